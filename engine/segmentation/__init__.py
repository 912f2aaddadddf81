"""Weakly supervised segmentation, Simonyan, Vedaldi & Zisserman (2013), §3.2: a class saliency map
seeds two colour models and a graph cut separates the object; its largest component's box is the
localisation. ``gmm`` fits the colour mixtures, ``graphcut`` solves the Boykov-Jolly / GrabCut
energy with PyMaxflow, ``grids`` holds the working and coarse grids a cut runs on, ``cut`` is the
GrabCut loop from seed codes, ``presets`` the named recipes from a saliency map to a mask, ``masks``
seed maps, RLE and overlays on disk and on screen. Works on arrays: no model, no torch.
May import: the core modules of ``engine`` only.
"""
from engine.segmentation import cut, masks, presets  # noqa: F401
from engine.segmentation.cut import Segmentation, segment
from engine.segmentation.presets import DEFAULT_PRESET, PRESETS, Preset, get_preset, segment_with_preset

__all__ = ["DEFAULT_PRESET", "PRESETS", "Preset", "Segmentation", "get_preset", "segment", "segment_with_preset"]
