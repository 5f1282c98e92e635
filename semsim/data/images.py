"""Reading image and label files: size limits from headers, EXIF orientation, RGB conversion.

- :func:`load_image`: ``[3, H, W]`` float32 in ``[0, 1]`` (grey, palette, 16-bit and alpha handled).
- :func:`load_label`: ``[H, W]`` int64 class indices from a palette or grey PNG.
- :func:`header_size`: ``(W, H)`` as displayed, from the header (PNG chunks checked), no pixels decoded.
- :func:`expand_path`: ``~`` and environment variables (``$SEMSIM_SHARED`` defaults to ``../shared``).
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ConfigError, DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
_PIL_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)
#: images above this many pixels are refused before they are decoded (8.4 megapixels: 4K UHD
#: fits; a learned codec needs about 1 GB of memory per megapixel); the environment variable
#: ``SEMSIM_MAX_IMAGE_PIXELS`` raises or lowers it
MAX_IMAGE_PIXELS = 2**23
#: scenes a procedural dataset may generate
#: the EXIF tag of the orientation; values 5 to 8 swap width and height
_EXIF_ORIENTATION = 0x0112


def max_image_pixels() -> int:
    """The largest image (in pixels) semsim reads: ``$SEMSIM_MAX_IMAGE_PIXELS`` or :data:`MAX_IMAGE_PIXELS`."""
    value = os.environ.get("SEMSIM_MAX_IMAGE_PIXELS")
    if value is None:
        return MAX_IMAGE_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ConfigError(f"SEMSIM_MAX_IMAGE_PIXELS must be a positive integer, got {value!r}")
    return limit


def check_image_size(width: int, height: int, what: str) -> None:
    """Refuse an image above :func:`max_image_pixels` with one line naming it and the limit."""
    limit = max_image_pixels()
    if width * height > limit:
        raise DataError(f"{what} is {width}x{height} pixels ({width * height / 1e6:.1f} megapixels), above the "
                        f"limit of {limit / 1e6:.1f} megapixels; resize or crop it, or raise "
                        f"SEMSIM_MAX_IMAGE_PIXELS")


def _oriented_size(im: Image.Image) -> tuple[int, int]:
    """``(W, H)`` as displayed: EXIF orientations 5 to 8 (a quarter turn) swap the header's."""
    w, h = im.size
    try:
        orientation = im.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 (a malformed EXIF block is ignored, as Pillow's exif_transpose does)
        orientation = 1
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def expand_path(path: str | os.PathLike) -> Path:
    """Expand ``~`` and environment variables (``$SEMSIM_SHARED`` defaults to ``../shared``)."""
    shared = os.environ.get("SEMSIM_SHARED", "../shared")
    path = re.sub(r"\$(\{SEMSIM_SHARED\}|SEMSIM_SHARED\b)", lambda _: shared, os.fspath(path))
    return Path(os.path.abspath(os.path.expandvars(os.path.expanduser(path))))


def _read_error(path: Path, e: Exception) -> DataError:
    if isinstance(e, Image.DecompressionBombError):
        return DataError(f"image '{path}' has more pixels than Pillow opens (a decompression bomb), far above the "
                         f"limit of {max_image_pixels() / 1e6:.1f} megapixels")
    return DataError(f"cannot read image '{path}': {e}")


def _read(path: Path, convert) -> Any:
    """Open ``path`` with Pillow, refuse it above :func:`max_image_pixels`, decode it, turn it
    upright by its EXIF orientation, then ``convert(image)``; errors name the file."""
    try:
        with Image.open(path) as im:
            check_image_size(*im.size, f"image '{path}'")
            im.load()
            return convert(ImageOps.exif_transpose(im))
    except DataError:
        raise
    except _PIL_ERRORS as e:
        raise _read_error(path, e) from None


def _rgb(im: Image.Image) -> np.ndarray:
    """A Pillow image as ``[H, W, 3]`` float32 in ``[0, 1]``; alpha is composited on white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # high bit depth grey
        grey = np.asarray(im, dtype=np.float32) / (1.0 if im.mode == "F" else 65535.0)
        return np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=2)
    if "A" in im.getbands() or "transparency" in im.info:
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im.convert("RGBA"))
    return np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0


def header_size(path: Path) -> tuple[int, int]:
    """``(W, H)`` of an image file as displayed, from its header; a PNG's chunks are also checked
    (CRCs, truncation) without decompressing. :class:`DataError` naming the file otherwise."""
    try:
        with Image.open(path) as im:
            size, png = _oriented_size(im), im.format == "PNG"
        check_image_size(*size, f"image '{path}'")
        if png:
            with Image.open(path) as im:
                im.verify()  # must come straight after open
    except DataError:
        raise
    except _PIL_ERRORS as e:
        raise _read_error(path, e) from None
    return size


def load_image(path: str | os.PathLike) -> torch.Tensor:
    """Read an image file as RGB.

    Grey (``L``, ``I;16``, ``1``), palette and CMYK files are converted to RGB; RGBA, LA and
    palette images with transparency are composited on a white background.

    :returns: ``[3, H, W]`` ``torch.float32`` in ``[0, 1]``.
    :raises DataError: the file is missing, corrupt or truncated (the message names the file).
    """
    array = _read(Path(path), _rgb)
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def load_label(path: str | os.PathLike) -> torch.Tensor:
    """Read a label mask: a palette (``P``) or grey (``L``, 16-bit) PNG whose values are class indices.

    :returns: ``[H, W]`` ``torch.int64``; void pixels keep their value (VOC 255, CamVid 11).
    :raises DataError: unreadable file, or a colour-coded (RGB) mask.
    """
    def indices(im: Image.Image) -> np.ndarray:
        if im.mode not in ("P", "L", "I;16", "I"):
            raise DataError(f"cannot read label '{path}': mode {im.mode!r} is not a map of class "
                            "indices (expected a palette or greyscale PNG)")
        return np.asarray(im, dtype=np.int64)

    return torch.from_numpy(_read(Path(path), indices))


def image_files(folder: Path) -> list[Path]:
    """The image files (:data:`IMAGE_SUFFIXES`, not hidden) of ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())
