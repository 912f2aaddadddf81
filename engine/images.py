"""Image input for every tool: any file a user may drop becomes an RGB uint8 array, or a clear error.

Decoding is where untrusted bytes meet the engine, so it is strict about size before it decodes
(decompression bombs), honours EXIF orientation, and converts every Pillow mode (L, LA, P, PA,
RGBA, CMYK, I;16, I, F, ...) to RGB by its meaning rather than by Pillow's clipping defaults.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

MAX_PIXELS = 40_000_000  # 40 MP: a large phone photo fits; bigger is refused before decoding
MAX_ASPECT = 20  # long side / short side: the model's views resize the short side to 256, so a
# 1×30000 strip (a 170-byte PNG) would become a 256×7.7M image (6 GB); a 20:1 panorama still fits
MAX_BYTES = 50 * 1024 * 1024  # mirrors .streamlit/config.toml's server.maxUploadSize (MB)
FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF")


class ImageError(ValueError):
    """The bytes are not an image this tool can use; the message is meant for the user."""


def load_image(source: bytes | str | Path) -> np.ndarray:
    """Decode ``source`` (bytes or a path) to an RGB image, (H, W, 3) uint8, upright."""
    data = Path(source).read_bytes() if isinstance(source, (str, Path)) else bytes(source)
    if not data:
        raise ImageError("The file is empty.")
    if len(data) > MAX_BYTES:
        raise ImageError(f"The file is {len(data) / 2**20:.0f} MB; the limit is {MAX_BYTES // 2**20} MB.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data), formats=FORMATS) as img:
                _check_size(img.size)
                img.seek(0)  # animated GIF / multi-page TIFF: the first frame
                img.load()
                img = ImageOps.exif_transpose(img)
                return to_rgb(img)
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(f"The image is too large to decode safely ({exc}).") from exc
        except UnidentifiedImageError as exc:
            kind = _signature(data)
            if kind:
                raise ImageError(f"The {kind} file is damaged: its header cannot be read.") from exc
            raise ImageError(
                "This file is not an image in a supported format (PNG, JPEG, WebP, BMP, TIFF, GIF)."
            ) from exc
        except (OSError, SyntaxError, EOFError, ValueError) as exc:
            raise ImageError(f"The image file is damaged or truncated ({exc}).") from exc


_SIGNATURES = {
    b"\x89PNG\r\n\x1a\n": "PNG", b"\xff\xd8\xff": "JPEG", b"GIF87a": "GIF", b"GIF89a": "GIF",
    b"BM": "BMP", b"II*\x00": "TIFF", b"MM\x00*": "TIFF",
}


def _signature(data: bytes) -> str | None:
    """The format a file claims by its first bytes, to tell a damaged image from a non-image."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((kind for magic, kind in _SIGNATURES.items() if data.startswith(magic)), None)


def _check_size(size: tuple[int, int]) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError("The image has no pixels.")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"The image is {width}×{height} = {width * height / 1e6:.0f} MP; "
            f"the limit is {MAX_PIXELS / 1e6:.0f} MP. Please downscale it first."
        )
    if max(width, height) > MAX_ASPECT * min(width, height) and max(width, height) > 256:
        raise ImageError(
            f"The image is {width}×{height}: its long side is more than {MAX_ASPECT} times its short side. "
            "Please crop it first."
        )


def to_rgb(img: Image.Image) -> np.ndarray:
    """Any Pillow mode to (H, W, 3) uint8 RGB; transparency is composited onto white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        grey = _high_depth_to_uint8(img)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if img.mode == "P" or img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode == "CMYK" and img.info.get("icc_profile"):
        img = _cmyk_with_profile(img)
    return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()


def _high_depth_to_uint8(img: Image.Image) -> np.ndarray:
    """16-bit or 32-bit greyscale to 8 bits by the mode's range, not Pillow's clip at 255."""
    values = np.asarray(img, dtype=np.float64)
    if img.mode.startswith("I;16"):
        scaled = values / 257.0  # 65535 -> 255
    else:  # "I" and "F" carry no nominal range: stretch what is there
        lo, hi = np.nanmin(values), np.nanmax(values)
        scaled = np.zeros_like(values) if hi <= lo else (values - lo) * (255.0 / (hi - lo))
    return np.clip(np.nan_to_num(scaled), 0, 255).round().astype(np.uint8)


def _cmyk_with_profile(img: Image.Image) -> Image.Image:
    from PIL import ImageCms

    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(img.info["icc_profile"]))
        return ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
    except (ImageCms.PyCMSError, OSError):
        return img  # a broken profile: fall back to Pillow's naive conversion


def encode_png(image_hwc: np.ndarray) -> bytes:
    """PNG bytes of an (H, W), (H, W, 3) or (H, W, 4) uint8 array."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image_hwc)).save(buffer, format="PNG")
    return buffer.getvalue()


def encode_jpeg(image_hwc: np.ndarray, *, quality: int = 90) -> bytes:
    """JPEG bytes of an (H, W) or (H, W, 3) uint8 array: for pictures shown, never for masks or seeds."""
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image_hwc)).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
