"""Error concealment in the pixel domain: fill lost MCUs from their intact neighbours.

The receiver of :mod:`baselines.jpeg_resilience` knows which MCUs (JPEG's 16 x 16 or 8 x 8 units)
it did not receive intact; :func:`lost_mask` turns them into pixels and :func:`conceal` fills those
by linear interpolation between the nearest intact pixels above and below (left and right where a
whole column is lost), the classic spatial concealment of a lost slice.

Example::

    >>> import numpy as np
    >>> image = np.tile(np.arange(0, 64, 4, dtype=np.uint8)[:, None, None], (1, 4, 3))  # vertical ramp
    >>> mask = np.zeros((16, 4), bool); mask[5:9] = True
    >>> bool((conceal(image, mask) == image).all())       # a ramp is restored exactly
    True
"""
from __future__ import annotations

import numpy as np


def trusted_bytes(codeword_ok: np.ndarray, k: int, num_bytes: int) -> np.ndarray:
    """``[C]`` bool per codeword (parity checks hold) → ``[num_bytes]`` bool per byte of the
    bitstream carried as the first ``8 num_bytes`` information bits of ``C`` codewords of ``k`` bits:
    a byte is trusted only if every codeword it touches is."""
    bit_ok = np.repeat(np.asarray(codeword_ok, dtype=bool), k)[:8 * num_bytes]
    return bit_ok.reshape(num_bytes, 8).all(axis=1)


def lost_mask(layout, lost_mcus, margin: int = 1) -> np.ndarray:
    """``[H, W]`` bool: the pixels of the ``lost_mcus`` (indices in raster order) of a
    :class:`~baselines.jpeg_resilience.JpegLayout`, dilated by ``margin`` pixels (libjpeg's chroma
    upsampling reaches one pixel across an MCU border)."""
    (h, w), (mh, mw) = layout.size, layout.mcu_size
    cols = layout.mcu_grid[1]
    mcu_lost = np.zeros(layout.mcu_grid, dtype=bool)
    idx = np.asarray(lost_mcus, dtype=np.int64)
    mcu_lost[idx // cols, idx % cols] = True
    mask = mcu_lost.repeat(mh, 0).repeat(mw, 1)
    if margin:
        padded = np.pad(mask, margin)
        for dy in range(-margin, margin + 1):
            for dx in range(-margin, margin + 1):
                mask = mask | padded[margin + dy:margin + dy + mask.shape[0], margin + dx:margin + dx + mask.shape[1]]
    return mask[:h, :w]


def _interpolate(values: np.ndarray, known: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation along axis 0 between the nearest known entries before and after.
    ``values`` ``[H, W, C]`` float32, ``known`` ``[H, W]`` bool → filled values, and which
    entries have a known entry on at least one side."""
    h = known.shape[0]
    rows = np.broadcast_to(np.arange(h)[:, None], known.shape)
    above = np.maximum.accumulate(np.where(known, rows, -1), axis=0)
    below = np.minimum.accumulate(np.where(known, rows, h)[::-1], axis=0)[::-1]
    cols = np.broadcast_to(np.arange(known.shape[1])[None, :], known.shape)
    va = values[above.clip(0, h - 1), cols]
    vb = values[below.clip(0, h - 1), cols]
    has_a, has_b = above >= 0, below < h
    t = np.where(has_a & has_b, (rows - above) / np.maximum(below - above, 1), np.where(has_a, 0.0, 1.0))
    filled = va + t[..., None] * (vb - va)
    return np.where(known[..., None], values, filled), has_a | has_b


def conceal(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Fill the ``mask``ed pixels of a ``[H, W, 3]`` uint8 image by vertical linear interpolation
    between the nearest unmasked pixels above and below, horizontal where a whole column is masked,
    mid-grey where everything is. Unmasked pixels are returned unchanged."""
    if not mask.any():
        return image
    values = image.astype(np.float32)
    filled, reached = _interpolate(values, ~mask)
    if not reached.all():
        across, reached_h = _interpolate(filled.transpose(1, 0, 2), reached.T)
        filled = np.where(reached[..., None], filled, across.transpose(1, 0, 2))
        filled[~(reached | reached_h.T)] = 128.0
    return np.where(mask[..., None], np.rint(filled).clip(0, 255), values).astype(np.uint8)
