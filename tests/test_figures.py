"""Figures for slides (engine/figures.py): the layout by hand, and the PNG, SVG and PDF it becomes."""
from __future__ import annotations

import base64
import io
import re
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest
from PIL import Image

from engine import figures
from engine.figures import GAP, MARGIN, Panel, figure_pdf, figure_png, figure_svg, layout, make_figure, render, wrap

SVG = "{http://www.w3.org/2000/svg}"


def solid(height: int, width: int, colour: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(colour, np.uint8), (height, width, 3)).copy()


def two_rows():
    red, green, blue = solid(100, 200, (255, 0, 0)), solid(50, 50, (0, 255, 0)), solid(300, 150, (0, 0, 255))
    return make_figure([[(red, "red"), (green, "green")], [Panel(blue, "")]], caption="A caption.", title="Title", panel_height=60)


def test_every_panel_is_scaled_to_the_row_height_and_rows_are_centred():
    plan = layout(two_rows())
    (red, green), (blue,) = plan.boxes
    assert (red.width, red.height, green.width, green.height, blue.width, blue.height) == (120, 60, 60, 60, 30, 60)
    assert green.x == red.x + red.width + GAP and red.y == green.y  # side by side, same top
    assert plan.width == max(figures.MIN_WIDTH, 120 + GAP + 60 + 2 * MARGIN)
    inner = plan.width - 2 * MARGIN
    assert red.x == MARGIN + (inner - (120 + GAP + 60)) // 2 and blue.x == MARGIN + (inner - 30) // 2
    assert blue.y > red.label_y  # the second row starts below the first row's labels
    assert plan.caption_y > blue.y + blue.height and plan.height > plan.caption_y
    assert red.label_lines == ("red",) and blue.label_lines == ()


def test_text_wraps_to_the_width_and_a_long_label_is_cut():
    lines = wrap("one two three four five six seven eight nine ten", 80, 14)
    assert len(lines) > 2 and all(figures._font(14)[0].getlength(line) <= 80 for line in lines if " " in line)
    cut = wrap("one two three four five six seven eight nine ten", 80, 14, max_lines=2)
    assert len(cut) == 2 and cut[-1].endswith("…")


def test_the_png_shows_each_panel_where_the_layout_puts_it():
    figure = two_rows()
    plan, pixels = layout(figure), render(figure)
    assert pixels.shape == (plan.height, plan.width, 3)
    (red, green), (blue,) = plan.boxes
    for box, colour in ((red, (255, 0, 0)), (green, (0, 255, 0)), (blue, (0, 0, 255))):
        inside = pixels[box.y + 2:box.y + box.height - 2, box.x + 2:box.x + box.width - 2]
        assert (inside == colour).all()
    assert (pixels[:MARGIN // 2] == 255).all()  # white margin
    assert (pixels[plan.caption_y:] < 128).any()  # the caption's ink
    png = Image.open(io.BytesIO(figure_png(figure)))
    assert png.format == "PNG" and png.size == (plan.width, plan.height) and (np.asarray(png) == pixels).all()


def test_the_svg_holds_the_same_panels_as_images_and_the_text_as_text():
    figure = two_rows()
    plan = layout(figure)
    root = ElementTree.fromstring(figure_svg(figure))
    assert (root.get("width"), root.get("height")) == (str(plan.width), str(plan.height))
    images = root.findall(f"{SVG}image")
    assert len(images) == 3
    first = images[0]
    assert (int(first.get("x")), int(first.get("y")), int(first.get("width"))) == (plan.boxes[0][0].x, plan.boxes[0][0].y, 120)
    data = base64.b64decode(first.get("href").split(",", 1)[1])
    assert (np.asarray(Image.open(io.BytesIO(data)).convert("RGB")) == (255, 0, 0)).all()
    texts = [t.text for t in root.findall(f"{SVG}text")]
    assert texts[0] == "Title" and "red" in texts and "green" in texts and texts[-1] == "A caption."


def test_svg_text_is_escaped():
    figure = make_figure([[(solid(10, 10, (0, 0, 0)), "a < b & c")]], caption='<script>"x"</script>')
    svg = figure_svg(figure)
    assert "<script>" not in svg
    texts = [t.text for t in ElementTree.fromstring(svg).findall(f"{SVG}text")]
    assert "a < b & c" in texts and '<script>"x"</script>' in texts


def test_the_pdf_is_one_page_of_the_figure():
    data = figure_pdf(two_rows())
    assert data.startswith(b"%PDF") and len(re.findall(rb"/Type\s*/Page\b", data)) == 1


def test_greek_and_section_signs_are_spelled_out_when_no_system_font_has_them(monkeypatch):
    figures._font.cache_clear()
    monkeypatch.setattr(figures, "FONT_FILES", ())
    try:
        assert wrap("§2 λ‖I‖²", 500, 14) == ("Sec. 2 lambda||I||^2",)
    finally:
        figures._font.cache_clear()


@pytest.mark.parametrize("rows, message", [
    ([], "at least one row"),
    ([[]], "at least one row"),
    ([[(np.zeros((4, 4), np.uint8), "grey")]], "uint8 (H, W, 3)"),
    ([[(np.zeros((4, 4, 3), np.float32), "float")]], "uint8 (H, W, 3)"),
    ([[(np.zeros((0, 4, 3), np.uint8), "empty")]], "uint8 (H, W, 3)"),
])
def test_bad_panels_are_refused_with_a_message(rows, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make_figure(rows, caption="")


def test_panel_height_is_bounded():
    with pytest.raises(ValueError, match="panel_height"):
        make_figure([[(solid(4, 4, (0, 0, 0)), "")]], caption="", panel_height=5)


def test_a_web_gallery_escapes_its_text_and_links_and_keeps_its_own_column_count():
    tiles = [figures.WebTile((figures.data_uri(b"\xff\xd8jpeg"),), 'a "cat" <b>', href="/saliency?image=cat&class=281"),
             figures.WebTile(("a.jpg", "b.jpg"), "two pictures")]
    page = figures.html_grid(tiles, columns=6)
    assert page.count("<figure>") == 2 and page.count("<img ") == 3 and 'style="--columns:6"' in page
    assert "&lt;b&gt;" in page and "<b>" not in page and 'alt="a &quot;cat&quot; &lt;b&gt;"' in page
    assert 'href="/saliency?image=cat&amp;class=281"' in page and page.count("<a ") == 1
    assert 'src="data:image/jpeg;base64,/9hqcGVn"' in page
    with pytest.raises(ValueError, match="columns"):
        figures.html_grid(tiles, columns=0)
