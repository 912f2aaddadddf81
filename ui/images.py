"""Photos as the pages hold them: decoded once per content, read-only, and the bundled demo photos.

Owns: ``ImageInput`` (name, sha256 digest, pixels), ``decode`` (cached per file's bytes), the demo photos'
list. May import: engine, ``ui.state``.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from engine.images import load_image
from ui.state import ASSETS


@dataclass(frozen=True, eq=False)
class ImageInput:
    name: str
    digest: str  # sha256 of the file's bytes: the cache key of everything computed from it
    image_hwc: np.ndarray


# ---------------------------------------------------------------- images
# Photos and maps are kept as they are, read-only (cache_resource): cache_data pickled a 12 MP photo (36 MB)
# and its map (48 MB) when made and unpickled them on every rerun.
def frozen(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


@st.cache_resource(max_entries=32, show_spinner=False)
def decode(data: bytes, name: str) -> ImageInput:
    return ImageInput(name, hashlib.sha256(data).hexdigest(), frozen(load_image(data)))


DEMO_ORDER = ("cat", "espresso", "astronaut", "grace_hopper", "rocket")  # the paper's kind of photo first


def demo_images() -> dict[str, Path]:
    files = sorted(ASSETS.glob("*.jpg"), key=lambda p: (DEMO_ORDER + (p.stem,)).index(p.stem))
    return {p.stem.replace("_", " "): p for p in files}
