"""The awkward image files of issue 2, made in memory: each with what decoding it must give.

Shared by the engine test (tests/test_bad_images.py), the AppTest upload test and the real-browser
upload test (tests/e2e/test_browser_bad_images.py). A file is either *refused* (``load_image``
raises ``ImageError``; the page shows ``st.error``) or *accepted* with a check on the decoded
(H, W, 3) uint8 array.
"""
from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


@dataclass(frozen=True)
class Sample:
    name: str  # file name as uploaded; the extension is what the uploader filters on
    data: bytes
    check: Callable[[np.ndarray], None] | None  # None: the file must be refused


def _save(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _close(actual, expected, tolerance: int = 12) -> None:
    diff = np.abs(np.asarray(actual, np.int32) - np.asarray(expected, np.int32)).max()
    assert diff <= tolerance, f"{actual} differs from {expected} by {diff}"


def _uniform(shape_hw: tuple[int, int], colour) -> Callable[[np.ndarray], None]:
    def check(rgb: np.ndarray) -> None:
        assert rgb.shape == (*shape_hw, 3) and rgb.dtype == np.uint8
        _close(rgb.reshape(-1, 3).mean(0), colour)

    return check


def quadrants(width: int = 64, height: int = 40) -> np.ndarray:
    """Red, green / blue, white quadrants: any rotation or mirror moves a colour to another corner."""
    image = np.zeros((height, width, 3), np.uint8)
    h, w = height // 2, width // 2
    image[:h, :w], image[:h, w:], image[h:, :w], image[h:, w:] = RED, GREEN, BLUE, WHITE
    return image


def _png_header_only(width: int, height: int) -> bytes:
    """A 100-byte PNG that declares width × height pixels: a decompression bomb's header."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _exif_rotated() -> Sample:
    upright = quadrants(64, 40)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation 6: the camera was turned; display rotated 90° clockwise
    data = _save(Image.fromarray(upright), "JPEG", quality=95, exif=exif.tobytes())
    expected = np.rot90(upright, k=-1)  # clockwise

    def check(rgb: np.ndarray) -> None:
        assert rgb.shape == (64, 40, 3), rgb.shape
        for rows in (slice(4, 28), slice(36, 60)):  # each quadrant's centre, away from JPEG edges
            for cols in (slice(3, 17), slice(23, 37)):
                _close(rgb[rows, cols].reshape(-1, 3).mean(0), expected[rows, cols].reshape(-1, 3).mean(0), 20)

    return Sample("rotated_exif6.jpg", data, check)


def _sixteen_bit() -> Sample:
    values = np.linspace(0, 128 * 257, 40 * 30).reshape(30, 40).astype(np.uint16)  # up to half range

    def check(rgb: np.ndarray) -> None:
        assert rgb.shape == (30, 40, 3)
        expected = np.round(values / 257.0).astype(np.uint8)  # scaled by the 16-bit range, not clipped
        np.testing.assert_allclose(rgb[..., 0], expected, atol=1)
        assert rgb[..., 0].max() == 128 and (rgb[..., 0] == rgb[..., 2]).all()

    return Sample("grey16.png", _save(Image.fromarray(values), "PNG"), check)


def _palette_transparent() -> Sample:
    image = Image.new("P", (20, 10), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 red, index 1 blue
    image.paste(1, (10, 0, 20, 10))
    data = _save(image, "PNG", transparency=1)  # the blue half is transparent

    def check(rgb: np.ndarray) -> None:
        assert rgb.shape == (10, 20, 3)
        _close(rgb[:, :10].reshape(-1, 3).mean(0), RED, 0)
        _close(rgb[:, 10:].reshape(-1, 3).mean(0), WHITE, 0)  # composited onto white

    return Sample("palette_transparent.png", data, check)


def _rgba() -> Sample:
    rgba = np.zeros((10, 20, 4), np.uint8)
    rgba[:, :10] = (0, 0, 255, 255)
    rgba[:, 10:] = (0, 0, 255, 0)

    def check(rgb: np.ndarray) -> None:
        _close(rgb[:, :10].reshape(-1, 3).mean(0), BLUE, 0)
        _close(rgb[:, 10:].reshape(-1, 3).mean(0), WHITE, 0)

    return Sample("rgba.png", _save(Image.fromarray(rgba), "PNG"), check)


def _la() -> Sample:
    la = np.zeros((10, 20, 2), np.uint8)
    la[:, :10] = (60, 255)
    la[:, 10:] = (60, 0)

    def check(rgb: np.ndarray) -> None:
        _close(rgb[:, :10].reshape(-1, 3).mean(0), (60, 60, 60), 0)
        _close(rgb[:, 10:].reshape(-1, 3).mean(0), WHITE, 0)

    return Sample("grey_alpha.png", _save(Image.fromarray(la, mode="LA"), "PNG"), check)


def _cmyk_jpeg() -> Sample:
    cmyk = Image.new("CMYK", (32, 16), (255, 0, 0, 0))  # pure cyan
    cmyk.paste((0, 0, 0, 0), (16, 0, 32, 16))  # no ink: white
    data = _save(cmyk, "JPEG", quality=95)

    def check(rgb: np.ndarray) -> None:
        assert rgb.shape == (16, 32, 3)
        _close(rgb[:, 2:14].reshape(-1, 3).mean(0), (0, 255, 255), 16)
        _close(rgb[:, 18:30].reshape(-1, 3).mean(0), WHITE, 16)

    return Sample("cmyk.jpg", data, check)


def _gif_frames() -> Sample:
    frames = [Image.new("RGB", (16, 12), colour).convert("P") for colour in (RED, BLUE, GREEN)]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return Sample("animated.gif", data, _uniform((12, 16), RED))


def _multipage_tiff() -> Sample:
    pages = [Image.new("RGB", (16, 12), colour) for colour in (GREEN, BLUE)]
    data = _save(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    return Sample("two_pages.tiff", data, _uniform((12, 16), GREEN))


def _truncated_jpeg() -> bytes:
    photo = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    data = _save(Image.fromarray(photo), "JPEG", quality=90)
    return data[: len(data) // 2]


def _corrupt_png() -> bytes:
    data = bytearray(_save(Image.fromarray(quadrants()), "PNG"))
    data[40:80] = b"\xff" * 40  # inside IHDR/IDAT: bad CRC and garbage stream
    return bytes(data)


def accepted() -> list[Sample]:
    """Odd but valid files: each decodes to the right RGB pixels."""
    return [
        Sample("tiny_1x1.png", _save(Image.new("RGB", (1, 1), GREEN), "PNG"), _uniform((1, 1), GREEN)),
        _sixteen_bit(),
        _cmyk_jpeg(),
        _palette_transparent(),
        _rgba(),
        _la(),
        _exif_rotated(),
        _gif_frames(),
        _multipage_tiff(),
        Sample("lossless.webp", _save(Image.new("RGB", (16, 12), BLUE), "WEBP", lossless=True), _uniform((12, 16), BLUE)),
        Sample("plain.bmp", _save(Image.new("RGB", (16, 12), RED), "BMP"), _uniform((12, 16), RED)),
    ]


def refused() -> list[Sample]:
    """Files that must be refused with a clear message."""
    return [
        Sample("corrupt.png", _corrupt_png(), None),
        Sample("truncated.jpg", _truncated_jpeg(), None),
        Sample("bomb_50000x50000.png", _png_header_only(50_000, 50_000), None),
        Sample("strip_1x30000.png", _save(Image.new("RGB", (30_000, 1)), "PNG"), None),  # 6 GB once resized
        Sample("not_an_image.png", b"this is plain text, not a picture\n" * 20, None),
        Sample("empty.png", b"", None),
    ]


def all_samples() -> list[Sample]:
    return accepted() + refused()
