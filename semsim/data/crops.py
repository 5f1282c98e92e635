"""Random training crops: :class:`ImagePool` keeps a task's training images in memory and draws
``crop x crop`` windows (reflect-padded where an image is smaller) from a passed generator, so
what a training step draws is a function of its seed only.
"""
from __future__ import annotations

from typing import Any

import torch

from ..registry import build


def _reflect(index: torch.Tensor, size: int) -> torch.Tensor:
    """Indices outside ``[0, size)`` mirrored back in (reflection without repeating the edge)."""
    if size == 1:
        return torch.zeros_like(index)
    period = 2 * (size - 1)
    index = index.abs() % period
    return torch.where(index >= size, period - index, index)


def _window(size: int, crop: int, u: float) -> torch.Tensor | slice:
    """``crop`` indices into an axis of ``size``: a window at relative offset ``u`` in [0, 1) (a
    slice), or, for a shorter axis, the whole axis at a random place inside a reflect-padded window."""
    if size >= crop:
        start = min(int(u * (size - crop + 1)), size - crop)
        return slice(start, start + crop)
    before = min(int(u * (crop - size + 1)), crop - size)
    return _reflect(torch.arange(-before, crop - before), size)


class ImagePool:
    """The training images of one task: the union of some datasets, decoded on first use and kept
    in memory as ``uint8`` (labels as ``uint8`` when they fit).

    :param specs: dataset specs (registry ``"dataset"``).
    """

    def __init__(self, specs: list[dict[str, Any]]):
        self.datasets = [build("dataset", s) for s in specs]
        self.index = [(d, i) for d, ds in enumerate(self.datasets) for i in range(len(ds))]
        self._cache: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}

    def __len__(self) -> int:
        return len(self.index)

    def get(self, k: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Sample ``k``: ``[3, H, W]`` uint8 and ``[H, W]`` integer labels or ``None``."""
        if k not in self._cache:
            d, i = self.index[k]
            s = self.datasets[d][i]
            image = (s.image * 255).round_().clamp_(0, 255).to(torch.uint8)
            label = s.label
            if label is not None:
                small = label.numel() == 0 or (int(label.min()) >= 0 and int(label.max()) <= 255)
                label = label.to(torch.uint8 if small else torch.int32)
            self._cache[k] = (image, label)
        return self._cache[k]

    def draw(self, gen: torch.Generator, batch: int, crop: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``batch`` random ``crop x crop`` windows of random images: ``[B, 3, c, c]`` uint8 and
        ``[B, c, c]`` int64 labels (or ``None``). Draws a fixed amount from ``gen``."""
        picks = torch.randint(len(self), (batch,), generator=gen).tolist()
        offsets = torch.rand(batch, 2, generator=gen, dtype=torch.float64).tolist()
        images, labels = [], []
        for k, (u, v) in zip(picks, offsets):
            image, label = self.get(k)
            rows, cols = _window(image.shape[1], crop, u), _window(image.shape[2], crop, v)
            images.append(image[:, rows][:, :, cols])
            if label is not None:
                labels.append(label[rows][:, cols])
        return torch.stack(images), (torch.stack(labels).long() if labels else None)
