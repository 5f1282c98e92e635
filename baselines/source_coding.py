"""Pillow source coders (JPEG, WebP, AVIF) and rate control: the (scale, quality) that fits a budget.

:class:`SourceCoder` compresses an image at an integer quality; :meth:`SourceCoder.fit` finds the
highest quality whose bitstream fits a number of bits. :func:`fit_scaled` adds resolution to rate
control: the image may be downscaled before coding (bicubic, :data:`SCALES`) and is upscaled at the
receiver (bicubic, :func:`upscale`); among the scales tried it keeps the (scale, quality) pair
whose decoded, upscaled image has the highest PSNR against the original. At low rates a smaller
image at a higher quality beats a full-size one at the lowest quality, and an image that fits at no
quality at full size is still sent (not replaced by grey).

Example::

    >>> import numpy as np
    >>> noise = np.random.default_rng(0).integers(0, 256, (128, 256, 3), dtype=np.uint8)
    >>> coder = source_coder("jpeg")
    >>> fit_scaled(coder, noise, 8 * 600, scaling="off") is None       # 600 bytes: too few at full size
    True
    >>> fitted = fit_scaled(coder, noise, 8 * 600, scaling="fallback")
    >>> fitted.scale < 1, len(fitted.data) <= 600, fitted.size == scaled_size((128, 256), fitted.scale)
    (True, True, True)
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from semsim.errors import ConfigError, choices

#: Resolution scales rate control may pick, largest first (side lengths; 1/4 keeps 1/16 of the pixels).
SCALES = (1.0, 0.75, 0.5, 0.375, 0.25)
#: ``scaling`` modes: ``off`` full size only; ``fallback`` full size while any quality fits, else
#: the best of the smaller scales; ``best`` the best (scale, quality) over all of :data:`SCALES`.
SCALING_MODES = ("off", "fallback", "best")
#: Smallest side of a downscaled image (one 8x8 block).
MIN_SIDE = 8


class SourceDecodeError(ValueError):
    """A bitstream could not be decompressed into an image of the expected size."""


@dataclass(frozen=True)
class SourceCoder:
    """A Pillow image codec at an integer quality setting.

    :param name: ``"jpeg"``, ``"webp"`` or ``"avif"``.
    :param format: Pillow's format name.
    :param quality_range: ``(lowest, highest)`` quality; bitstreams grow with quality.
    :param options: further keyword arguments of ``Image.save`` (e.g. the AVIF encoder speed).
    """

    name: str
    format: str
    quality_range: tuple[int, int]
    options: dict[str, Any] = field(default_factory=dict)

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        """``[H, W, 3]`` uint8 RGB → bitstream at ``quality``."""
        lo, hi = self.quality_range
        if not lo <= quality <= hi:
            raise ConfigError(f"{self.name}: quality must lie in [{lo}, {hi}], got {quality}")
        buf = io.BytesIO()
        Image.fromarray(image, "RGB").save(buf, self.format, quality=int(quality), **self.options)
        return buf.getvalue()

    def decode(self, data: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
        """Bitstream → ``[H, W, 3]`` uint8 RGB.

        :param size: the expected ``(H, W)``; checked before the pixels are decoded, so a corrupted
            header cannot make Pillow allocate a huge image.
        :raises SourceDecodeError: the stream is not a decodable image of that size in RGB.
        """
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img = Image.open(io.BytesIO(data), formats=[self.format])
                if size is not None and img.size != (size[1], size[0]):
                    raise SourceDecodeError(f"{self.name}: decoded size {img.size[::-1]} != {tuple(size)}")
                if img.mode != "RGB":
                    raise SourceDecodeError(f"{self.name}: decoded mode {img.mode!r}, expected 'RGB'")
                img.load()
                out = np.asarray(img, dtype=np.uint8)
        except SourceDecodeError:
            raise
        except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, … on corrupt data
            raise SourceDecodeError(f"{self.name}: cannot decode bitstream: {e}") from None
        if out.ndim != 3 or out.shape[2] != 3:
            raise SourceDecodeError(f"{self.name}: decoded array has shape {out.shape}")
        return out

    def fit(self, image: np.ndarray, max_bits: int) -> tuple[int, bytes] | None:
        """The highest quality whose bitstream has at most ``max_bits`` bits, and that bitstream.

        Binary search on quality, then a scan upwards from the first quality that did not fit
        until two consecutive ones do not fit, in case sizes are not monotone in quality. The
        result is the highest fitting quality among those tested, and ``quality + 1`` was tested
        and does not fit (unless the result is the top of the range).

        :returns: ``(quality, bitstream)``, or ``None`` if even the lowest quality does not fit.
        """
        lo, hi = self.quality_range
        tried: dict[int, bytes] = {}

        def fits(q: int) -> bool:
            if q not in tried:
                tried[q] = self.encode(image, q)
            return 8 * len(tried[q]) <= max_bits

        if not fits(lo):
            return None
        if fits(hi):
            return hi, tried[hi]
        good, bad = lo, hi  # good fits, bad does not
        while bad - good > 1:
            mid = (good + bad) // 2
            if fits(mid):
                good = mid
            else:
                bad = mid
        # Sizes need not be monotone in quality: keep scanning up until two misses in a row.
        q, misses = bad + 1, 1
        while q <= hi and misses < 2:
            if fits(q):
                good, misses = q, 0
            else:
                misses += 1
            q += 1
        return good, tried[good]


#: Source coders by name. AVIF uses libavif's speed 8 (fast; default 6 is ~3x slower for a few
#: percent smaller files); WebP uses Pillow's default method 4.
SOURCE_CODERS: dict[str, SourceCoder] = {
    "jpeg": SourceCoder("jpeg", "JPEG", (1, 95), {"optimize": True}),
    "webp": SourceCoder("webp", "WEBP", (0, 100), {"method": 4}),
    "avif": SourceCoder("avif", "AVIF", (0, 100), {"speed": 8}),
}

#: How each source coder is written in method labels.
SOURCE_LABELS = {"jpeg": "JPEG", "webp": "WebP", "avif": "AVIF"}


def source_coder(name: str) -> SourceCoder:
    """The :class:`SourceCoder` called ``name``; :class:`ConfigError` listing the valid ones."""
    if name not in SOURCE_CODERS:
        raise ConfigError(f"unknown source coder {name!r}; valid choices: {choices(SOURCE_CODERS)}")
    if name == "avif":
        from PIL import features

        if not features.check("avif"):
            raise ConfigError("source coder 'avif' needs Pillow built with AVIF support (Pillow >= 11.3 wheels)")
    return SOURCE_CODERS[name]


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` float in [0, 1] → ``[H, W, 3]`` uint8."""
    arr = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return arr.permute(1, 2, 0).cpu().numpy()


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """``[H, W, 3]`` uint8 → ``[3, H, W]`` float32 in [0, 1]."""
    return torch.from_numpy(np.array(array, dtype=np.uint8)).permute(2, 0, 1).float().div(255)


class FitCache:
    """Remembers :func:`fit_scaled` results: the runner sends the same image at every SNR."""

    def __init__(self, size: int = 4096):
        self._d: OrderedDict = OrderedDict()
        self._size = size

    def fit(self, coder: SourceCoder, image: np.ndarray, max_bits: int, scaling: str = "off") -> Fitted | None:
        """:func:`fit_scaled` of these arguments, computed once."""
        key = (repr(coder), image.shape, hashlib.sha1(image.tobytes()).hexdigest(), int(max_bits), scaling)
        if key in self._d:
            self._d.move_to_end(key)
            return self._d[key]
        out = fit_scaled(coder, image, max_bits, scaling)
        self._d[key] = out
        if len(self._d) > self._size:
            self._d.popitem(last=False)
        return out


def scaled_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """``(H, W)`` at ``scale``: each side rounded to the nearest pixel."""
    return max(1, round(size[0] * scale)), max(1, round(size[1] * scale))


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``[H, W, 3]`` uint8 → ``[h, w, 3]`` uint8, bicubic (Pillow's, antialiased when shrinking)."""
    if image.shape[:2] == tuple(size):
        return image
    return np.asarray(Image.fromarray(image, "RGB").resize((size[1], size[0]), Image.Resampling.BICUBIC))


#: The receiver's upscaling: bicubic, as the transmitter's downscaling.
upscale = resize


def check_scaling(scaling: str | bool) -> str:
    """``scaling`` if it is one of :data:`SCALING_MODES`, else :class:`ConfigError`. YAML reads a bare
    ``scaling: off`` as ``False``: that is ``"off"``."""
    if scaling is False:
        return "off"
    if scaling not in SCALING_MODES:
        raise ConfigError(f"unknown scaling {scaling!r}; valid choices: {choices(SCALING_MODES)}")
    return scaling


@dataclass(frozen=True)
class Fitted:
    """A bitstream chosen by rate control: ``data`` at ``quality`` of the image downscaled by ``scale``
    (to ``size``), and the PSNR in dB of its decoded, upscaled image (``nan`` when not measured)."""

    scale: float
    quality: int
    data: bytes
    size: tuple[int, int]
    psnr: float = math.nan


def _psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0 ** 2 / mse)


def fit_scaled(coder: SourceCoder, image: np.ndarray, max_bits: int, scaling: str = "fallback",
               scales: tuple[float, ...] = SCALES) -> Fitted | None:
    """Rate control over resolution and quality (see the module docstring).

    :input image: ``[H, W, 3]`` uint8 RGB.
    :param max_bits: the bitstream's budget in bits.
    :param scaling: one of :data:`SCALING_MODES`.
    :returns: the chosen :class:`Fitted`, or ``None`` when nothing fits at any allowed scale.
    """
    check_scaling(scaling)
    size = image.shape[:2]
    full = coder.fit(image, max_bits)
    if full is not None and scaling != "best":
        return Fitted(1.0, full[0], full[1], tuple(size))
    if scaling == "off":
        return None
    candidates = [Fitted(1.0, full[0], full[1], tuple(size))] if full is not None else []
    for s in scales:
        small = scaled_size(size, s)
        if s >= 1.0 or min(small) < MIN_SIDE:
            continue
        fitted = coder.fit(resize(image, small), max_bits)
        if fitted is not None:
            candidates.append(Fitted(s, fitted[0], fitted[1], small))
    if not candidates:
        return None
    scored = [dataclasses.replace(c, psnr=_psnr_uint8(upscale(coder.decode(c.data, c.size), size), image))
              for c in candidates]
    return max(scored, key=lambda c: (c.psnr, c.scale))
