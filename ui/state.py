"""Session-state key names and the app's paths, named once: what crosses pages lives under these keys.

Owns: the keys of the shared sidebar (model, weights), the current image, the review page's photo, and
the routing flags; the assets folder. May import: nothing of ui (every other ui module may import it).
"""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ASSETS = ROOT / "assets"
MODEL_KEY, WEIGHTS_KEY = "model_name", "model_weights"  # sidebar widgets
IMAGE_KEY = "current_image"  # ImageInput shared by every page
ROUTED_KEY = "_routed_by_app"  # set by app.py's frame; absent only in a legacy pages/ run
LEGACY_RERUN_KEY = "_legacy_rerun_done"


UPLOAD_TYPES = ("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif")
UI_WEIGHTS = ("pretrained", "random")  # the UI never opens a user-supplied path


REVIEW_STEM_KEY = "review_stem"  # the photo open on the review page
