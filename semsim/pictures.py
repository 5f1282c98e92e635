"""Pictures that semsim writes: class colours (:func:`palette`), the segmentation overlay
(:func:`overlay`), and PNG/JPEG files written atomically (:func:`check_output`, :func:`save_picture`).
``semsim transmit`` and ``semsim grid`` both draw with them."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .errors import ConfigError, choices
from .files import atomic_file, check_output_file

OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
#: the SegNet colours of CamVid's 11 classes (Sky, Building, Pole, Road, Pavement, Tree,
#: SignSymbol, Fence, Car, Pedestrian, Bicyclist)
CAMVID_PALETTE = ((128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
                  (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192))
OVERLAY_ALPHA = 0.5


def palette(num_classes: int) -> np.ndarray:
    """``[num_classes, 3]`` uint8 class colours: CamVid's for 11 classes, PASCAL VOC's otherwise."""
    if num_classes == len(CAMVID_PALETTE):
        return np.array(CAMVID_PALETTE, dtype=np.uint8)
    colours = np.zeros((num_classes, 3), dtype=np.uint8)
    for c in range(num_classes):  # VOC's colour map: the class index's bits spread over R, G, B
        value, code = c, [0, 0, 0]
        for shift in range(7, -1, -1):
            for ch in range(3):
                code[ch] |= ((value >> ch) & 1) << shift
            value >>= 3
        colours[c] = code
    return colours


def overlay(image: torch.Tensor, classes: torch.Tensor, num_classes: int) -> Image.Image:
    """The input beside it blended 50 % with the colours of the predicted classes.

    :param image: ``[3, H, W]`` float in [0, 1].
    :param classes: ``[H, W]`` int64 class indices in ``[0, num_classes)``.
    :returns: a ``2W x H`` RGB picture.
    """
    rgb = image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    colours = palette(num_classes)[classes.cpu().numpy()].astype(np.float32) / 255
    blend = (1 - OVERLAY_ALPHA) * rgb + OVERLAY_ALPHA * colours
    return to_picture(np.concatenate([rgb, blend], axis=1))


def to_picture(array: np.ndarray) -> Image.Image:
    """``[H, W, 3]`` float in [0, 1] → an RGB picture (rounded to 8 bits)."""
    return Image.fromarray(np.round(np.clip(array, 0, 1) * 255).astype(np.uint8), "RGB")


def check_output(path: str | os.PathLike) -> Path:
    """``path`` if it names a PNG or JPEG file that can be written (not a folder, not under a
    file, in a writable place); :class:`ConfigError` otherwise."""
    path = Path(path)
    check_output_file(path)
    if path.suffix.lower() not in OUTPUT_FORMATS:
        raise ConfigError(f"output {str(path)!r} must end in {choices(sorted(OUTPUT_FORMATS))} "
                          f"(got {path.suffix or 'no suffix'!r})")
    return path


def save_picture(picture: Image.Image, path: str | os.PathLike) -> Path:
    """Write ``picture`` to ``path`` (PNG or JPEG by suffix) atomically, creating parent folders."""
    path = check_output(path)
    with atomic_file(path) as tmp:
        picture.save(tmp, format=OUTPUT_FORMATS[path.suffix.lower()],
                     **({"quality": 95} if path.suffix.lower() != ".png" else {}))
    return path
