"""Home: the paper at a glance. The gallery is drawn from the shipped files (assets/gallery, made by
`python -m engine gallery`) before anything imports torch, each row one HTML block with its pictures
inside (no request per picture); ``ui`` is imported last (see app.py)."""
from urllib.parse import urlencode

import streamlit as st

from engine.figures import WebTile, data_uri, html_grid
from engine.runs.gallery import ASSETS, encode_tile, make_tile, read_gallery, spec_of, tile_entry

COLUMNS = {"2": 6, "3.1": 5, "3.2": 5, "4": 4}  # §2: three classes a row, each paper | regularised
REDONE_KEY = "home_redone"  # {tile id: (manifest-like entry, JPEG bytes)} made live on this session's model
SIDEBAR_PARAMS = ("model", "weights")  # carried into every tile's link

st.title("Deep Inside Convolutional Networks")
link_box = st.container()
st.markdown(
    """
**Simonyan, Vedaldi & Zisserman, "Deep Inside Convolutional Networks: Visualising Image Classification Models and
Saliency Maps"** ([arXiv:1312.6034](https://arxiv.org/abs/1312.6034), ICLR 2014 workshop), reproduced, and the methods
that came after it. Below, the paper at a glance in its own order, each picture made by this app's engine (embedded
**EfficientNet-Lite0**, ImageNet weights, CPU); a tile's link opens its page on that very input, and each section can be
redone live on the model chosen in the sidebar (VGG-16 is the closest to the paper's network).
"""
)


def web_tile(section: str, tile: dict) -> WebTile:
    """A tile as shipped, or as redone in this session; §3.1 shows each photo over its map (the paper's Figure 2)."""
    entry, picture = st.session_state.get(REDONE_KEY, {}).get(tile["id"]) or (tile, gallery.picture(tile))
    photos = [gallery.photo(tile)] if section == "3.1" else []
    params = {**entry["link"]["params"], **{k: st.query_params[k] for k in SIDEBAR_PARAMS if k in st.query_params}}
    href = f"{(st.context.url or '').rstrip('/')}/{entry['link']['page']}?{urlencode(params)}"
    return WebTile(tuple(data_uri(p) for p in [*photos, picture]), entry["caption"], href)


def draw(section: str, tiles: tuple) -> list:
    """The section's rows, each in its own slot (a redo replaces one row at a time)."""
    per_row, slots = COLUMNS.get(section, 4), []
    for start in range(0, len(tiles), per_row):
        slots.append((st.empty(), tiles[start:start + per_row]))
        slots[-1][0].html(html_grid([web_tile(section, t) for t in slots[-1][1]], columns=per_row))
    return slots


def redo(section: str, slots: list) -> None:
    """Make the section's tiles again on the sidebar's model, row by row in place, with a progress bar."""
    import ui.links
    import ui.model

    model = ui.model.current_model()
    tiles = [t for _, row in slots for t in row]
    bar = st.progress(0.0, text=f"Redoing on {model.name}…")
    redone = st.session_state.setdefault(REDONE_KEY, {})
    for slot, row in slots:
        for tile in row:
            done = tiles.index(tile)

            def on_step(step, steps, done=done, tile=tile):
                bar.progress((done + step / steps) / len(tiles), text=f"{tile['id']}: step {step} of {steps} on {model.name}")

            spec = spec_of(tile, top1=True)
            made = make_tile(model, spec, ASSETS, on_step=on_step)
            redone[tile["id"]] = (tile_entry(spec, made, model, "DIR"), encode_tile(made.image_hwc))
        slot.html(html_grid([web_tile(section, t) for t in row], columns=COLUMNS.get(section, 4)))
    bar.empty()


try:
    gallery = read_gallery()  # the shipped one
except ValueError as exc:
    st.warning(str(exc))
    gallery = None
for section in gallery.manifest["sections"] if gallery else ():
    st.subheader(f"§{section['id']} {section['title']}")
    caption, button = st.columns([3, 1])
    caption.caption(section["paper"])
    again = button.button("Redo live", key=f"home_redo_{section['id']}", icon=":material/refresh:", width="stretch",
                          help="Make this section again on the sidebar's model, here and now, with the engine functions "
                               "`python -m engine gallery` runs (§2 takes minutes on a CPU, seconds on a GPU).")
    slots = draw(section["id"], gallery.section(section["id"]))
    if again:
        redo(section["id"], slots)

st.caption("Every tile: `python -m engine gallery --out assets/gallery` (deterministic: fixed seeds, exact math, one CPU "
           "thread); `assets/gallery/manifest.json` records each one's command, model, class, method, settings and link. "
           "Demo photos: scikit-image and matplotlib sample data (CC0 / public domain); see assets/README.md.")

import ui  # noqa: E402  (last: it imports torch, seconds in a fresh server; the gallery is already on screen)

ui.links.copy_link(link_box)
