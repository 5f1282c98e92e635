"""Image datasets: photo folders for reconstruction, labelled scenes for segmentation.

Every dataset is a sequence of :class:`Sample` objects:

- ``image``: ``[3, H, W]`` ``torch.float32`` in ``[0, 1]`` (always RGB; grey, palette and
  16-bit files are converted, alpha is composited on white);
- ``label``: ``[H, W]`` ``torch.int64`` class indices, or ``None`` for photo sets. Pixels equal to
  the dataset's ``ignore_index`` (VOC 255, CamVid 11) are void and ignored by the metrics.

Every dataset takes the common options ``limit`` (first N samples, in sorted order), ``crop``
(centre crop to ``crop x crop`` pixels) and ``ids`` (select samples by id). Paths may use ``~`` and
environment variables; ``$SEMSIM_SHARED`` defaults to ``../shared`` (relative to the working
directory) when unset.

Registered names: ``builtin`` (the default: photos bundled with scikit-image, no download),
``folder``, ``kodak``, ``bsds500``, ``voc``, ``camvid``, ``procedural``. A dataset on disk takes its
folder as ``root``.

Modules: :mod:`~semsim.data.images` (reading files), :mod:`~semsim.data.base` (the dataset base,
batching, content hashes), :mod:`~semsim.data.datasets` (the registered datasets),
:mod:`~semsim.data.crops` (random training crops, :class:`ImagePool`). Every public name is
importable from ``semsim.data``.

Example::

    >>> from semsim.data import build_dataset, stack
    >>> ds = build_dataset({"name": "procedural", "num": 4, "height": 64, "width": 96})
    >>> images, labels, ids = stack([ds[0], ds[1]])
    >>> images.shape, labels.shape, ds.num_classes, ds.ignore_index
    (torch.Size([2, 3, 64, 96]), torch.Size([2, 64, 96]), 11, 11)
"""
from .base import ImageDataset, Sample, batches_by_size, build_dataset, content_hash, image_sizes, stack
from .crops import ImagePool
from .datasets import (BUILTIN_PHOTOS, CAMVID_CLASSES, MAX_PROCEDURAL_SCENES, VOC_CLASSES, Bsds500Dataset,
                       BuiltinDataset, CamVidDataset, FolderDataset, KodakDataset, ProceduralDataset, VocDataset,
                       procedural_scene)
from .images import (IMAGE_SUFFIXES, MAX_IMAGE_PIXELS, check_image_size, expand_path, header_size, image_files,
                     load_image, load_label, max_image_pixels)

__all__ = ["BUILTIN_PHOTOS", "CAMVID_CLASSES", "IMAGE_SUFFIXES", "MAX_IMAGE_PIXELS", "MAX_PROCEDURAL_SCENES",
           "VOC_CLASSES", "Bsds500Dataset", "BuiltinDataset", "CamVidDataset", "FolderDataset", "ImageDataset",
           "ImagePool", "KodakDataset", "ProceduralDataset", "Sample", "VocDataset", "batches_by_size",
           "build_dataset", "check_image_size", "content_hash", "expand_path", "header_size", "image_files",
           "image_sizes", "load_image", "load_label", "max_image_pixels", "procedural_scene", "stack"]
