"""The image and class pickers every page opens with.

Owns: the demo-or-upload image picker (an unusable file stops the page with its message; an upload is
carried to the other pages), the class picker (top-1 by default) and their link parameters.
May import: engine, ``ui.state``, ``ui.images``, ``ui.links``, ``ui.results``.
"""
from __future__ import annotations

import streamlit as st

from engine.images import ImageError
from engine.models import (
    LoadedModel,
    find_class,
)
from ui.images import ImageInput, decode, demo_images
from ui.links import UrlParam, keep_in_url, restore_from_url
from ui.results import cached_predict
from ui.state import IMAGE_KEY, UPLOAD_TYPES


def image_picker(key: str = "image", *, url_param: str | None = None) -> ImageInput:
    """A demo image or an upload, kept for the other pages; an unusable file stops the page with
    its message. An upload made on another page is offered first, so the pages share it. With
    ``url_param``, a demo photo is kept in the URL under that name (an upload cannot be, and the page says so)."""
    demos = demo_images()
    link = None if url_param is None else UrlParam(url_param, f"{key}_demo", parse=_demo_name, dump=_demo_stem, default=next(iter(demos)))
    if link is not None:
        restore_from_url(link)
    current: ImageInput | None = st.session_state.get(IMAGE_KEY)
    carried = current if current is not None and current.name not in demos else None
    names = ([carried.name] if carried else []) + list(demos)
    index = names.index(current.name) if current is not None else 0
    left, right = st.columns([1, 2])
    picked = left.selectbox("Demo image", names, index=index, key=f"{key}_demo",
                            format_func=lambda n: f"{n} (your upload)" if carried and n == carried.name else n)
    upload = right.file_uploader("…or upload your own", type=UPLOAD_TYPES, key=f"{key}_upload",
                                 help="PNG, JPEG, WebP, BMP, TIFF or GIF (first frame), up to 40 MP.")
    try:
        if upload is not None:
            chosen = decode(upload.getvalue(), upload.name)
        elif carried is not None and picked == carried.name:
            chosen = carried
        else:
            chosen = decode(demos[picked].read_bytes(), picked)
    except ImageError as exc:
        st.error(f"Cannot use {upload.name if upload else picked}: {exc}")
        st.stop()
    st.session_state[IMAGE_KEY] = chosen
    if link is not None:
        is_demo = upload is None and chosen.name in demos
        keep_in_url(link, values={link.name: chosen.name if is_demo else None})
        if not is_demo:
            st.caption(f":material/link_off: An upload cannot go in a link: this page's link opens the demo photo "
                       f"{link.default} with the other settings.")
    return chosen


def class_picker(model: LoadedModel, *, top1: int, key: str, label: str = "Target class", url_param: str | None = None) -> int:
    """Top-1 by default, or any of the 1000 classes: type to search by name or index. With ``url_param``,
    a chosen class is kept in the URL under that name (an index; a link may also give an exact label)."""
    names = model.categories
    link = None if url_param is None else UrlParam(url_param, key, parse=lambda raw: find_class(names, raw))
    if link is not None:
        restore_from_url(link)
    # The top-1 option's label must not change with the image: a new label makes a new widget.
    choice = st.selectbox(
        label, [None, *range(len(names))], key=key,
        format_func=lambda i: "Top-1 prediction" if i is None else f"{i} · {names[i]}",
        help=f"Now the top-1 is {top1} · {names[top1]}. Type to search the 1000 ImageNet classes by name or index.")
    if link is not None:
        keep_in_url(link)
    return top1 if choice is None else int(choice)


def image_and_class(model: LoadedModel, prefix: str, *, url: bool = False) -> tuple[ImageInput, int]:
    """The image picker, then the class picker defaulting to the image's top-1 (centre view);
    widget keys ``{prefix}_image`` and ``{prefix}_class``; with ``url``, kept in the URL as ``image`` and ``class``."""
    image = image_picker(key=f"{prefix}_image", url_param="image" if url else None)
    return image, class_picker(model, top1=cached_predict(model, image, top=1)[0].index, key=f"{prefix}_class",
                               url_param="class" if url else None)


def _demo_name(raw: str) -> str:
    """A demo photo's name from a link (its file stem, ``grace_hopper``, or its shown name)."""
    demos = demo_images()
    name = raw.strip().replace("_", " ")
    if name not in demos:
        raise ValueError(f"there is no demo photo {raw!r}; the demo photos are {', '.join(_demo_stem(n) for n in demos)}.")
    return name


def _demo_stem(name: str) -> str:
    return name.replace(" ", "_")
