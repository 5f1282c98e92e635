"""What every dataset shares: :class:`Sample`, the :class:`ImageDataset` base with the common options
(``limit``, ``crop``, ``ids``), and batching (:func:`batches_by_size`, :func:`stack`) and content
hashes (:func:`content_hash`) of any dataset.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, DataError, choices
from ..registry import build
from .images import header_size, load_image, load_label


@dataclass
class Sample:
    """One image with its id and, for segmentation sets, its label map.

    :param id: the sample's id (usually the file stem).
    :param image: ``[3, H, W]`` ``torch.float32`` in ``[0, 1]``.
    :param label: ``[H, W]`` ``torch.int64`` class indices, or ``None``.
    """

    id: str
    image: torch.Tensor
    label: torch.Tensor | None = None



class ImageDataset(Sequence):
    """Base class: a sorted list of ``(id, entry)`` pairs, the common options, and loading.

    Subclasses pass their entries (any object :meth:`_load` understands; by default an
    ``(image_path, label_path or None)`` pair) to ``__init__``.

    :param root: the data folder (``None`` for generated data).
    :param entries: ``(id, entry)`` pairs in sorted order.
    :param limit: keep the first ``limit`` samples (after ``ids`` selection).
    :param crop: centre crop every sample to ``crop x crop`` pixels.
    :param ids: keep only these ids, in this order.
    :param info: extra plain data for :meth:`describe` (``split``, ``seed``, ...).
    """

    name: str = "dataset"
    num_classes: int | None = None
    ignore_index: int | None = None
    class_names: tuple[str, ...] | None = None

    def __init__(self, root: Path | None, entries: list[tuple[str, Any]], *, limit: int | None = None,
                 crop: int | None = None, ids: list[str] | None = None, **info: Any):
        for opt, value in (("limit", limit), ("crop", crop)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ConfigError(f"{self.name}: {opt} must be a positive integer or null, got {value!r}")
        if not entries:
            raise DataError(f"{self.name}: no samples found in '{root}'")
        table = dict(entries)
        if len(table) != len(entries):
            raise DataError(f"{self.name}: duplicate sample ids in '{root}' (e.g. 'a.png' and 'a.jpg')")
        if ids is not None:
            if isinstance(ids, str):
                ids = [ids]
            unknown = [i for i in ids if i not in table]
            if unknown:
                raise ConfigError(f"{self.name}: unknown id(s) {choices(unknown)}; "
                                  f"available: {choices(list(table))}")
            entries = [(i, table[i]) for i in ids]
        self.root, self.crop, self.info = root, crop, info
        self.entries = entries[:limit]

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index: int) -> Sample:
        sample_id, entry = self.entries[index]  # IndexError ends iteration
        image, label = self._load(entry)
        if self.crop:
            image, label = self._centre_crop(sample_id, image, label)
        return Sample(sample_id, image, label)

    @property
    def ids(self) -> list[str]:
        """The sample ids, in order."""
        return [i for i, _ in self.entries]

    def sizes(self) -> list[tuple[int, int]]:
        """``(H, W)`` of every sample (after ``crop``), from file headers: no pixels are decoded.

        Checks every header on the way (a file that does not open, a PNG whose chunks are
        truncated or corrupt, an image above :func:`max_image_pixels`, a label map of another
        size, a crop larger than the image), so a run can refuse bad data before it writes anything.
        """
        sizes = [self._size(entry) for _, entry in self.entries]
        if self.crop:
            for (sample_id, _), (h, w) in zip(self.entries, sizes):
                if self.crop > h or self.crop > w:
                    raise ConfigError(f"{self.name}: crop={self.crop} is larger than image {sample_id!r} "
                                      f"({w}x{h} pixels)")
            return [(self.crop, self.crop)] * len(self)
        return sizes

    def _size(self, entry: Any) -> tuple[int, int]:
        w, h = header_size(entry[0])
        if len(entry) > 1 and entry[1] is not None:
            lw, lh = header_size(entry[1])
            if (lw, lh) != (w, h):
                raise DataError(f"label '{entry[1]}' is {lw}x{lh} pixels but its image '{entry[0]}' is {w}x{h}")
        return h, w

    def _load(self, entry: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        image_path, label_path = entry
        image = load_image(image_path)
        label = None if label_path is None else load_label(label_path)
        if label is not None and label.shape != image.shape[-2:]:
            raise DataError(f"label '{label_path}' is {label.shape[1]}x{label.shape[0]} pixels but its image "
                            f"'{image_path}' is {image.shape[2]}x{image.shape[1]}")
        return image, label

    def _centre_crop(self, sample_id, image, label):
        c, (h, w) = self.crop, image.shape[-2:]
        if c > h or c > w:
            raise ConfigError(f"{self.name}: crop={c} is larger than image {sample_id!r} ({w}x{h} pixels)")
        top, left = (h - c) // 2, (w - c) // 2
        window = (slice(top, top + c), slice(left, left + c))
        return image[(slice(None), *window)], (None if label is None else label[window])

    def describe(self) -> dict[str, Any]:
        """Plain data for logs and result files: name, root, count, classes and options."""
        return {"name": self.name, "root": None if self.root is None else str(self.root),
                "count": len(self), "num_classes": self.num_classes,
                "ignore_index": self.ignore_index, "crop": self.crop, **self.info}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.describe().items())})"

def build_dataset(spec: str | dict[str, Any]) -> ImageDataset:
    """Build a registered dataset from a name or ``{"name": ..., **options}``."""
    return build("dataset", spec)


def image_sizes(dataset: ImageDataset) -> list[tuple[int, int]]:
    """``(H, W)`` of every sample of ``dataset``, cheaply (file headers only)."""
    return dataset.sizes()


def content_hash(dataset: ImageDataset) -> str:
    """sha256 naming what ``dataset`` yields: its ids with the bytes of their image and label files
    (hashes cached by path, size and times, :func:`semsim.files.file_sha256`), its crop, and for
    generated data (no files) its options. Paths are left out: a copy of the same files elsewhere
    gives the same hash; an edited image, label or list of ids gives another.
    """
    from ..files import file_sha256

    files = [p for _, entry in dataset.entries for p in (entry if isinstance(entry, tuple) else ())
             if isinstance(p, Path)]
    digests = iter(file_sha256(files))
    items = [[sample_id, [next(digests) if isinstance(p, Path) else None
                          for p in (entry if isinstance(entry, tuple) else ())]]
             for sample_id, entry in dataset.entries]
    about = {k: v for k, v in dataset.describe().items() if k != "root"} if not files else {"crop": dataset.crop}
    text = json.dumps({"name": dataset.name, "samples": items, **about}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def batches_by_size(dataset: Sequence[Sample], batch_size: int) -> Iterator[list[Sample]]:
    """Batches of at most ``batch_size`` samples that share one ``(H, W)``.

    Samples are read once, in dataset order. A batch is yielded as soon as its size group is full;
    the partial groups follow at the end, in order of first appearance. Deterministic; every sample
    appears exactly once, and order within a size group is dataset order.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
    groups: dict[tuple[int, int], list[Sample]] = {}
    for sample in dataset:
        group = groups.setdefault(tuple(sample.image.shape[-2:]), [])
        group.append(sample)
        if len(group) == batch_size:
            yield group[:]
            group.clear()
    yield from (group for group in groups.values() if group)


def stack(samples: Sequence[Sample]) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
    """Collate samples of one size.

    :returns: ``images [B, 3, H, W] float32``, ``labels [B, H, W] int64`` (or ``None`` when the
        samples have no labels) and the ids.
    """
    if not samples:
        raise ValueError("stack() needs at least one sample")
    sizes = {tuple(s.image.shape) for s in samples}
    if len(sizes) > 1:
        raise DataError(f"cannot stack images of different sizes {sorted(sizes)}; group them with batches_by_size")
    labels = None if samples[0].label is None else torch.stack([s.label for s in samples])
    return torch.stack([s.image for s in samples]), labels, [s.id for s in samples]
