"""The mean amplitude spectrum of natural photos, for MACO (Fel et al. 2023, "Unlocking Feature
Visualization for Deeper Networks with MAgnitude Constrained Optimization"), a successor of the class
model visualisation of Simonyan et al. 2013, §2.

MACO optimises only the Fourier phase of the image; its magnitude stays that of natural images. Here
the magnitude is measured in the space the MACO parameterisation maps from: a photo ``p`` in [0, 1]
(the centre square, resized to ``side``) is ``p = sigmoid(C·z)`` with ``C`` the ImageNet colour
correlation (``parameterisations.COLOUR_CORRELATION``), so ``z = C⁻¹·logit(p)`` (``p`` clipped to
[0.01, 0.99]: the logit of a saturated pixel is unbounded). The asset is, per channel of ``z``, the
mean over the photos of ``|rfft2(z)|`` (orthonormal), (3, side, side // 2 + 1); at zero frequency
(a real number: the image's mean) it keeps the signed mean, so a phase-only image has the photos'
mean colour. ``python -m engine spectrum PHOTOS --out FILE`` makes it; the app ships
``assets/spectrum/natural_224.npy`` made from the development ILSVRC photos (float16, photos in sorted
name order, summed in float64: the same photos give the same bytes).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

SIDE = 224
ASSET = Path(__file__).resolve().parents[2] / "assets" / "spectrum" / f"natural_{SIDE}.npy"
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png")
CLIP = 0.01  # p in [CLIP, 1 - CLIP] before the logit


def photo_paths(folder: str | Path, *, every: int = 1) -> list[Path]:
    """The photos in ``folder`` (not its subfolders) in sorted name order, every ``every``-th one."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"No folder {folder}.")
    if int(every) < 1:
        raise ValueError(f"every must be at least 1; got {every}.")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())[:: int(every)]
    if not paths:
        raise ValueError(f"No photos ({', '.join(PHOTO_SUFFIXES)}) in {folder}.")
    return paths


def centre_square(path: str | Path, side: int = SIDE) -> np.ndarray:
    """The photo's centre square resized to ``side`` (bicubic), float64 in [0, 1], (3, side, side)."""
    with Image.open(path) as image:
        rgb = image.convert("RGB")
        width, height = rgb.size
        short = min(width, height)
        left, top = (width - short) // 2, (height - short) // 2
        square = rgb.crop((left, top, left + short, top + short)).resize((side, side), Image.Resampling.BICUBIC)
    return np.asarray(square, dtype=np.float64).transpose(2, 0, 1) / 255.0


def decorrelated_logits(photo_chw: np.ndarray, colour: np.ndarray) -> np.ndarray:
    """``z = C⁻¹·logit(p)``: the MACO image that ``sigmoid(C·z)`` maps back to the photo, (3, H, W)."""
    p = np.clip(photo_chw, CLIP, 1.0 - CLIP)
    return np.einsum("ij,jhw->ihw", np.linalg.inv(colour.astype(np.float64)), np.log(p / (1.0 - p)))


def mean_spectrum(paths: Sequence[str | Path], colour: np.ndarray, *, side: int = SIDE,
                  on_photo: Callable[[int, int], None] | None = None) -> np.ndarray:
    """Mean ``|rfft2(z)|`` over the photos (signed mean at zero frequency), float64 (3, side, side // 2 + 1)."""
    total = np.zeros((3, side, side // 2 + 1))
    for done, path in enumerate(paths, 1):
        spectrum = np.fft.rfft2(decorrelated_logits(centre_square(path, side), colour), norm="ortho")
        amplitude = np.abs(spectrum)
        amplitude[:, 0, 0] = spectrum[:, 0, 0].real
        total += amplitude
        if on_photo is not None:
            on_photo(done, len(paths))
    return total / len(paths)


def save_spectrum(spectrum: np.ndarray, path: str | Path) -> Path:
    """Written as float16 ``.npy`` (the asset is ~150 kB at 224²)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, spectrum.astype(np.float16), allow_pickle=False)
    return path


def load_spectrum(path: str | Path = ASSET) -> np.ndarray:
    """The shipped (or given) spectrum, float32 (3, side, side // 2 + 1)."""
    try:
        spectrum = np.load(path, allow_pickle=False).astype(np.float32)
    except FileNotFoundError:
        raise ValueError(f"No spectrum at {path}: run `python -m engine spectrum PHOTOS --out {path}`.") from None
    side = spectrum.shape[1] if spectrum.ndim == 3 else 0
    if spectrum.shape != (3, side, side // 2 + 1) or side < 2:
        raise ValueError(f"{path} holds a {spectrum.shape} array, not a (3, S, S // 2 + 1) spectrum.")
    return spectrum


def resample_spectrum(spectrum: np.ndarray, height: int, width: int) -> np.ndarray:
    """The spectrum at another image size, each frequency (in cycles per pixel) taking the nearest one
    measured: (3, height, width // 2 + 1). The identity at the measured size."""
    side = spectrum.shape[1]
    if (height, width) == (side, side):
        return spectrum
    rows = np.rint(np.fft.fftfreq(height) * side).astype(int) % side
    cols = np.minimum(np.rint(np.fft.rfftfreq(width) * side).astype(int), side // 2)
    return spectrum[:, rows[:, None], cols[None, :]]
