"""Figures for slides, laid out the way Simonyan, Vedaldi & Zisserman (2013) lay out their own: rows of
pictures with a short label under each (Fig. 1: class model images in a grid, named; Fig. 2: photos over
their saliency maps; Fig. 3: photo, map, mask), and a caption saying what made them (model, class,
method, settings).

One layout, three files: PNG (the figure's pixels), SVG (each panel an embedded PNG, every label and the
caption real text, editable on a slide) and PDF (the PNG's pixels on a page, for LaTeX). ``html_grid``
lays out a web page's gallery the same way (pictures, caption, link). Display only: no model, no torch.
"""
from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from functools import lru_cache
from html import escape as escape_html
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PANEL_HEIGHT = 256  # pixels of every panel in a row: the paper's figures show equal-height pictures
MARGIN, GAP = 16, 10  # around the figure, between panels and rows
LABEL_SIZE, CAPTION_SIZE, TITLE_SIZE = 14, 14, 18  # font pixels
LABEL_LINES = 2  # a longer label is cut with an ellipsis
MIN_WIDTH = 480  # a one-panel figure still has room for its caption
LINE = 1.3  # line height per font pixel
INK, PAPER = (34, 34, 34), (255, 255, 255)
FONT_FILES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "/usr/share/fonts/dejavu/DejaVuSans.ttf",
              "/usr/share/fonts/TTF/DejaVuSans.ttf", "/Library/Fonts/Arial Unicode.ttf", "C:/Windows/Fonts/arial.ttf")
# Pillow's own font has no Greek, no § and no maths: without a system font, text is spelled out.
ASCII_TEXT = str.maketrans({"§": "Sec. ", "²": "^2", "λ": "lambda", "σ": "sigma", "γ": "gamma", "∂": "d", "×": "x",
                            "–": "-", "—": "-", "‖": "||", "≤": "<=", "≥": ">=", "→": "->", "“": '"', "”": '"', "’": "'"})
SVG_FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"


@dataclass(frozen=True, eq=False)
class Panel:
    """One picture of a figure and the label under it."""

    image_hwc: np.ndarray  # uint8 (H, W, 3)
    label: str = ""


@dataclass(frozen=True, eq=False)
class Figure:
    """Rows of panels (each row at one height), a title above and a caption below."""

    rows: tuple[tuple[Panel, ...], ...]
    caption: str
    title: str = ""
    panel_height: int = PANEL_HEIGHT


@dataclass(frozen=True)
class Box:
    """Where a panel (``x, y, width, height``) and its label lines (from ``label_y``) sit, in pixels."""

    x: int
    y: int
    width: int
    height: int
    label_y: int
    label_lines: tuple[str, ...]


@dataclass(frozen=True)
class Layout:
    width: int
    height: int
    title_lines: tuple[str, ...]
    boxes: tuple[tuple[Box, ...], ...]  # like Figure.rows
    caption_y: int
    caption_lines: tuple[str, ...]


def make_figure(rows, *, caption: str, title: str = "", panel_height: int = PANEL_HEIGHT) -> Figure:
    """A figure of ``rows`` (each a sequence of ``Panel`` or of (image, label) pairs), checked."""
    if not 32 <= panel_height <= 2048:
        raise ValueError(f"panel_height must be 32..2048 pixels; got {panel_height}.")
    built = tuple(tuple(p if isinstance(p, Panel) else Panel(*p) for p in row) for row in rows)
    if not built or not all(built):
        raise ValueError("A figure needs at least one row, and every row at least one panel.")
    for row in built:
        for panel in row:
            image = panel.image_hwc
            if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
                    and min(image.shape[:2]) > 0):
                raise ValueError(f"A panel is a uint8 (H, W, 3) image; got {getattr(image, 'dtype', type(image))} "
                                 f"{getattr(image, 'shape', '')}.")
    return Figure(built, caption, title, panel_height)


@lru_cache(maxsize=8)
def _font(size: int) -> tuple[ImageFont.FreeTypeFont, bool]:
    """A font at ``size`` pixels and whether it has the Greek and maths glyphs (a system DejaVu or Arial)."""
    for path in FONT_FILES:
        if Path(path).exists():
            return ImageFont.truetype(path, size), True
    return ImageFont.load_default(size=size), False


def _text(text: str, size: int) -> str:
    return text if _font(size)[1] else text.translate(ASCII_TEXT)


def wrap(text: str, width: int, size: int, *, max_lines: int | None = None) -> tuple[str, ...]:
    """``text`` in lines no wider than ``width`` pixels at ``size``; past ``max_lines``, cut with an ellipsis."""
    font, text = _font(size)[0], _text(text, size)
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            trial = f"{line} {word}" if line else word
            if line and font.getlength(trial) > width:
                lines.append(line)
                line = word
            else:
                line = trial
        lines.append(line)
    if max_lines is not None and len(lines) > max_lines:
        lines = lines[:max_lines]
        while lines[-1] and font.getlength(lines[-1] + "…") > width:
            lines[-1] = lines[-1][:-1]
        lines[-1] += "…"
    return tuple(lines)


def layout(figure: Figure) -> Layout:
    """Every panel scaled to the row height, rows centred, labels under the panels, caption at the foot."""
    height = figure.panel_height
    widths = [[max(1, round(p.image_hwc.shape[1] * height / p.image_hwc.shape[0])) for p in row] for row in figure.rows]
    inner = max([sum(w) + GAP * (len(w) - 1) for w in widths] + [MIN_WIDTH - 2 * MARGIN])
    title_lines = wrap(figure.title, inner, TITLE_SIZE) if figure.title else ()
    y = MARGIN + round(len(title_lines) * TITLE_SIZE * LINE) + (GAP if title_lines else 0)
    label_height = round(LABEL_LINES * LABEL_SIZE * LINE)
    rows = []
    for row, row_widths in zip(figure.rows, widths):
        x = MARGIN + (inner - sum(row_widths) - GAP * (len(row_widths) - 1)) // 2
        boxes = []
        for panel, width in zip(row, row_widths):
            lines = wrap(panel.label, width, LABEL_SIZE, max_lines=LABEL_LINES) if panel.label else ()
            boxes.append(Box(x, y, width, height, y + height + 4, lines))
            x += width + GAP
        rows.append(tuple(boxes))
        y += height + 4 + (label_height if any(b.label_lines for b in boxes) else 0) + GAP
    caption_lines = wrap(figure.caption, inner, CAPTION_SIZE) if figure.caption else ()
    total = y + round(len(caption_lines) * CAPTION_SIZE * LINE) + MARGIN
    return Layout(inner + 2 * MARGIN, total, title_lines, tuple(rows), y, caption_lines)


def _resized(panel: Panel, box: Box) -> Image.Image:
    image = Image.fromarray(panel.image_hwc)
    if image.size == (box.width, box.height):
        return image
    smaller = box.width < image.width
    return image.resize((box.width, box.height), Image.Resampling.BOX if smaller else Image.Resampling.LANCZOS)


def _lines(plan: Layout):
    """(x, y, text, size, centred) of every line of text; x is the centre when centred."""
    for i, line in enumerate(plan.title_lines):
        yield MARGIN, MARGIN + round(i * TITLE_SIZE * LINE), line, TITLE_SIZE, False
    for row in plan.boxes:
        for box in row:
            for i, line in enumerate(box.label_lines):
                yield box.x + box.width // 2, box.label_y + round(i * LABEL_SIZE * LINE), line, LABEL_SIZE, True
    for i, line in enumerate(plan.caption_lines):
        yield MARGIN, plan.caption_y + round(i * CAPTION_SIZE * LINE), line, CAPTION_SIZE, False


def render(figure: Figure) -> np.ndarray:
    """The figure's pixels, uint8 (H, W, 3)."""
    plan = layout(figure)
    canvas = Image.new("RGB", (plan.width, plan.height), PAPER)
    for row, boxes in zip(figure.rows, plan.boxes):
        for panel, box in zip(row, boxes):
            canvas.paste(_resized(panel, box), (box.x, box.y))
    draw = ImageDraw.Draw(canvas)
    for x, y, text, size, centred in _lines(plan):
        draw.text((x, y), text, font=_font(size)[0], fill=INK, anchor="ma" if centred else "la")
    return np.asarray(canvas)


def figure_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(render(figure)).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def figure_pdf(figure: Figure, *, dpi: int = 144) -> bytes:
    """One page holding the figure's pixels at ``dpi`` (a 1000-pixel figure is about 18 cm wide)."""
    buffer = io.BytesIO()
    Image.fromarray(render(figure)).save(buffer, format="PDF", resolution=float(dpi))
    return buffer.getvalue()


def figure_svg(figure: Figure) -> str:
    """The same layout as SVG: each panel an embedded PNG at its shown size, the text as text."""
    plan = layout(figure)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" '
             f'width="{plan.width}" height="{plan.height}" viewBox="0 0 {plan.width} {plan.height}">',
             f'<rect width="100%" height="100%" fill="rgb{PAPER}"/>']
    for row, boxes in zip(figure.rows, plan.boxes):
        for panel, box in zip(row, boxes):
            buffer = io.BytesIO()
            _resized(panel, box).save(buffer, format="PNG")
            data = base64.b64encode(buffer.getvalue()).decode("ascii")
            parts.append(f'<image x="{box.x}" y="{box.y}" width="{box.width}" height="{box.height}" '
                         f'xlink:href="data:image/png;base64,{data}" href="data:image/png;base64,{data}"/>')
    for x, y, text, size, centred in _lines(plan):
        anchor = ' text-anchor="middle"' if centred else ""
        parts.append(f'<text x="{x}" y="{y + size}" font-family="{SVG_FONT}" font-size="{size}" '
                     f'fill="rgb{INK}"{anchor}>{escape(text)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


# ---------------------------------------------------------------- the same idea on a web page
@dataclass(frozen=True)
class WebTile:
    """One cell of a web gallery: its pictures (``src`` URLs, top to bottom), caption and link."""

    sources: tuple[str, ...]
    caption: str
    href: str | None = None
    link_text: str = "Open in its page"


def data_uri(data: bytes, mime: str = "image/jpeg") -> str:
    """A picture inside the page itself: no request per picture, on screen with the page's own message."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def html_grid(tiles, *, columns: int) -> str:
    """Tiles as a grid of figures (pictures, caption, link) in ``columns`` equal columns, two on a narrow
    screen; every text and URL escaped."""
    if columns < 1:
        raise ValueError(f"columns must be at least 1; got {columns}.")
    cells = []
    for tile in tiles:
        pictures = "".join(f'<img src="{escape_html(src)}" alt="{escape_html(tile.caption)}">' for src in tile.sources)
        link = "" if tile.href is None else f'<a href="{escape_html(tile.href)}" target="_self">{escape_html(tile.link_text)}</a>'
        cells.append(f"<figure>{pictures}<figcaption>{escape_html(tile.caption)}</figcaption>{link}</figure>")
    style = (".gallery{display:grid;grid-template-columns:repeat(var(--columns),minmax(0,1fr));gap:0.9rem;margin-bottom:0.5rem}"
             ".gallery figure{margin:0}.gallery img{width:100%;display:block;margin-bottom:0.25rem;border-radius:0.25rem}"
             ".gallery figcaption{font-size:0.8rem;opacity:0.75;line-height:1.3;margin-bottom:0.2rem}"
             ".gallery a{font-size:0.85rem}"
             "@media (max-width:700px){.gallery{grid-template-columns:repeat(2,minmax(0,1fr))}}")
    # the style is the same in every grid (a page's styles are global): the column count is the grid's own
    return f'<style>{style}</style><div class="gallery" style="--columns:{int(columns)}">{"".join(cells)}</div>'
