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
``folder``, ``kodak``, ``bsds500``, ``voc``, ``camvid``, ``procedural``.

Example::

    >>> from semsim.data import build_dataset, stack
    >>> ds = build_dataset({"name": "procedural", "num": 4, "height": 64, "width": 96})
    >>> images, labels, ids = stack([ds[0], ds[1]])
    >>> images.shape, labels.shape, ds.num_classes, ds.ignore_index
    (torch.Size([2, 3, 64, 96]), torch.Size([2, 64, 96]), 11, 11)
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ConfigError, DataError, choices
from .registry import build, register

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm")
CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence",
                  "Car", "Pedestrian", "Bicyclist")
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")
# Photos scikit-image ships inside its package (not fetched with pooch); colour ones first.
BUILTIN_PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
                  "camera.png")
_PIL_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError)
#: images above this many pixels are refused before they are decoded (8.4 megapixels: 4K UHD
#: fits; a learned codec needs about 1 GB of memory per megapixel); the environment variable
#: ``SEMSIM_MAX_IMAGE_PIXELS`` raises or lowers it
MAX_IMAGE_PIXELS = 2**23
#: scenes a procedural dataset may generate
MAX_PROCEDURAL_SCENES = 100_000
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


def _header_size(path: Path) -> tuple[int, int]:
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


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file())


def _require_dir(path: Path, expected: str) -> Path:
    if not path.is_dir():
        raise DataError(f"data folder '{path}' not found; expected {expected}")
    return path


def _find_layout(root: Path, candidates: tuple[str, ...], marker: str, expected: str) -> Path:
    """The first ``root/c`` (``c`` in ``candidates``) that holds ``marker``: accepts nested layouts."""
    _require_dir(root, expected)
    for c in candidates:
        if (root / c / marker).exists():
            return root / c
    raise DataError(f"'{root}' does not have the expected layout: {expected}")


def _check_choice(what: str, value: Any, valid: tuple[str, ...]) -> str:
    if value not in valid:
        raise ConfigError(f"unknown {what} {value!r}; valid choices: {choices(valid)}")
    return value


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
        w, h = _header_size(entry[0])
        if len(entry) > 1 and entry[1] is not None:
            lw, lh = _header_size(entry[1])
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


def _photo_entries(folder: Path) -> list[tuple[str, tuple[Path, None]]]:
    return [(p.stem, (p, None)) for p in _image_files(folder)]


@register("dataset", "folder")
class FolderDataset(ImageDataset):
    """Every image file in a folder (``IMAGE_SUFFIXES``), sorted by name; ids are file stems.

    If ``path`` holds no images but exactly one subfolder whose name ends in ``_HR`` (DIV2K's
    ``DIV2K_valid_HR`` / ``DIV2K_train_HR``), that subfolder is used.

    :param path: the folder.
    """

    name = "folder"

    def __init__(self, path: str, *, limit: int | None = None, crop: int | None = None,
                 ids: list[str] | None = None):
        folder = _require_dir(expand_path(path), "a folder of image files")
        if not _image_files(folder):
            hr = [d for d in sorted(folder.iterdir()) if d.is_dir() and d.name.endswith("_HR")]
            if len(hr) != 1:
                found = f"; it has several '*_HR' subfolders: {choices(d.name for d in hr)}" if hr else ""
                raise DataError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in '{folder}'{found}; "
                                "expected a folder of images, or one holding a single '*_HR' folder (DIV2K)")
            folder = hr[0]
        super().__init__(folder, _photo_entries(folder), limit=limit, crop=crop, ids=ids)


@register("dataset", "kodak")
class KodakDataset(FolderDataset):
    """The 24 Kodak photos (768x512 landscape or 512x768 portrait PNG), ids ``kodim01`` … ``kodim24``."""

    name = "kodak"

    def __init__(self, path: str = "$SEMSIM_SHARED/data/kodak", *, limit: int | None = None,
                 crop: int | None = None, ids: list[str] | None = None):
        super().__init__(path, limit=limit, crop=crop, ids=ids)


@register("dataset", "bsds500")
class Bsds500Dataset(ImageDataset):
    """BSDS500 colour JPEGs (481x321 or 321x481): ``root/{split}/<id>.jpg``.

    The original ``BSR/BSDS500/data/images/{split}`` layout is accepted too.

    :param root: the dataset folder.
    :param split: ``"train"``, ``"val"`` or ``"test"`` (the official held-out 200).
    """

    name = "bsds500"
    SPLITS = ("train", "val", "test")

    def __init__(self, root: str = "$SEMSIM_SHARED/data/bsds500", split: str = "test", *,
                 limit: int | None = None, crop: int | None = None, ids: list[str] | None = None):
        _check_choice("bsds500 split", split, self.SPLITS)
        base = _find_layout(expand_path(root), ("", "data/images", "BSDS500/data/images",
                                                "BSR/BSDS500/data/images"), split,
                            f"'{split}/<id>.jpg' (or BSR/BSDS500/data/images/{split}/)")
        super().__init__(base, _photo_entries(base / split), limit=limit, crop=crop, ids=ids, split=split)


@register("dataset", "builtin")
class BuiltinDataset(ImageDataset):
    """Photos bundled inside the installed scikit-image package; nothing is downloaded.

    Order: astronaut, coffee, chelsea, rocket, motorcycle_left (colour), camera (grey → RGB);
    names missing from the installed version are skipped. Sizes differ (300x451 … 512x512).
    """

    name = "builtin"

    def __init__(self, *, limit: int | None = None, crop: int | None = None, ids: list[str] | None = None):
        try:
            import skimage.data
        except ImportError:
            raise DataError("the 'builtin' dataset needs scikit-image (pip install scikit-image)") from None
        # Read the files with Pillow: skimage.data's loaders may go through pooch.
        folder = Path(skimage.data.__file__).parent
        entries = [(Path(f).stem, (folder / f, None)) for f in BUILTIN_PHOTOS if (folder / f).is_file()]
        super().__init__(folder, entries, limit=limit, crop=crop, ids=ids)


@register("dataset", "voc")
class VocDataset(ImageDataset):
    """PASCAL VOC 2012 segmentation: 21 classes (background first), void 255.

    Reads ``ImageSets/Segmentation/{split}.txt``, ``JPEGImages/<id>.jpg`` and
    ``SegmentationClass/<id>.png`` (palette PNG of class indices) under ``root``, ``root/VOC2012``
    or ``root/VOCdevkit/VOC2012``.

    :param root: the dataset folder.
    :param split: ``"train"``, ``"val"`` or ``"trainval"``.
    """

    name = "voc"
    num_classes, ignore_index, class_names = 21, 255, VOC_CLASSES
    SPLITS = ("train", "val", "trainval")

    def __init__(self, root: str = "$SEMSIM_SHARED/data/voc_subset", split: str = "val", *,
                 limit: int | None = None, crop: int | None = None, ids: list[str] | None = None):
        _check_choice("voc split", split, self.SPLITS)
        base = _find_layout(expand_path(root), ("", "VOC2012", "VOCdevkit/VOC2012"), "JPEGImages",
                            "VOCdevkit/VOC2012/ or a folder holding JPEGImages/, SegmentationClass/ "
                            "and ImageSets/Segmentation/")
        lists = base / "ImageSets" / "Segmentation"
        if not (lists / f"{split}.txt").is_file():
            found = sorted(p.stem for p in lists.glob("*.txt")) if lists.is_dir() else []
            raise DataError(f"voc: split list '{lists / f'{split}.txt'}' not found; "
                            f"split lists present: {choices(found) or 'none'}")
        names = sorted(set((lists / f"{split}.txt").read_text().split()))
        entries = [(n, (base / "JPEGImages" / f"{n}.jpg", base / "SegmentationClass" / f"{n}.png"))
                   for n in names]
        super().__init__(base, entries, limit=limit, crop=crop, ids=ids, split=split)


@register("dataset", "camvid")
class CamVidDataset(ImageDataset):
    """CamVid in the SegNet layout: 480x360 images, 11 classes (:data:`CAMVID_CLASSES`), void 11.

    Pairs come from ``{split}.txt`` (lines ``split/NAME.png splitannot/NAME.png``; absolute
    ``/SegNet/CamVid/...`` paths are reduced to their last two components), or, without it, from
    matching file names in ``{split}/`` and ``{split}annot/``. ``root/CamVid`` is accepted too.

    :param root: the dataset folder.
    :param split: ``"train"``, ``"val"`` or ``"test"``.
    """

    name = "camvid"
    num_classes, ignore_index, class_names = 11, 11, CAMVID_CLASSES
    SPLITS = ("train", "val", "test")

    def __init__(self, root: str = "$SEMSIM_SHARED/data/camvid", split: str = "val", *,
                 limit: int | None = None, crop: int | None = None, ids: list[str] | None = None):
        _check_choice("camvid split", split, self.SPLITS)
        base = _find_layout(expand_path(root), ("", "CamVid"), split,
                            f"SegNet layout with '{split}/', '{split}annot/' and optionally '{split}.txt'")
        listing = base / f"{split}.txt"
        if listing.is_file():
            pairs = [[base.joinpath(*Path(p).parts[-2:]) for p in line.split()]
                     for line in listing.read_text().splitlines() if line.strip()]
        else:
            pairs = [[p, base / f"{split}annot" / p.name] for p in _image_files(base / split)]
        entries = sorted((image.stem, (image, label)) for image, label in pairs)
        super().__init__(base, entries, limit=limit, crop=crop, ids=ids, split=split)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int = 16) -> np.ndarray:
    """``[H, W, 3]`` low-frequency noise with unit-ish amplitude (bilinear upsampling of a coarse grid)."""
    coarse = torch.from_numpy(rng.standard_normal((1, 3, h // cell + 2, w // cell + 2), dtype=np.float32))
    fine = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)
    return fine[0].permute(1, 2, 0).numpy()


def procedural_scene(rng: np.random.Generator, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """A street-like scene: ``([H, W, 3] float32 in [0, 1], [H, W] int64 CamVid class indices)``."""
    label = np.full((h, w), 5, dtype=np.int64)  # vegetation behind everything
    y, x = np.mgrid[0:h, 0:w] / np.array([h, w]).reshape(2, 1, 1)
    horizon, kerb = rng.uniform(0.3, 0.45), rng.uniform(0.65, 0.75)
    label[y < horizon] = 0                                        # sky
    label[y > kerb] = 4                                           # pavement
    label[y > kerb + rng.uniform(0.05, 0.1)] = 3                  # road
    for _ in range(rng.integers(1, 4)):                           # buildings
        x0, top = rng.uniform(0, 0.8), rng.uniform(0.05, horizon)
        label[(x >= x0) & (x < x0 + rng.uniform(0.15, 0.4)) & (y >= top) & (y <= kerb)] = 1
    for _ in range(rng.integers(1, 4)):                           # trees
        cx, cy, r = rng.uniform(0, 1), rng.uniform(horizon - 0.1, kerb - 0.1), rng.uniform(0.06, 0.14)
        label[((x - cx) * w / h) ** 2 + (y - cy) ** 2 < r ** 2] = 5
    fence_x = rng.uniform(0, 0.7)
    label[(x >= fence_x) & (x < fence_x + 0.3) & (y > kerb - 0.06) & (y <= kerb)] = 7
    pole_x = rng.uniform(0.05, 0.95)
    label[(abs(x - pole_x) < 0.008) & (y > horizon - 0.15) & (y < kerb + 0.03)] = 2
    label[(abs(x - pole_x) < 0.03) & (abs(y - horizon + 0.15) < 0.03)] = 6  # sign on the pole
    for cls, (width, height) in ((9, (0.02, 0.15)), (10, (0.04, 0.12))):  # pedestrian, bicyclist
        px, feet = rng.uniform(0, 1), kerb + rng.uniform(0.0, 0.05)
        label[(abs(x - px) < width) & (y > feet - height) & (y <= feet)] = cls
    for _ in range(rng.integers(1, 3)):                           # cars on the road
        cx, bottom = rng.uniform(0, 0.85), rng.uniform(0.85, 0.98)
        label[(x >= cx) & (x < cx + rng.uniform(0.12, 0.2)) & (y > bottom - 0.1) & (y <= bottom)] = 8
    palette = np.array([(128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222),
                        (128, 128, 0), (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0),
                        (0, 128, 192)], dtype=np.float32) / 255
    palette = palette + rng.uniform(-0.12, 0.12, palette.shape)  # per-scene colour jitter
    # Blotchy brightness (one channel, broadcast) plus fine colour grain.
    texture = 0.1 * _smooth_noise(rng, h, w)[..., :1] + 0.04 * _smooth_noise(rng, h, w, cell=2)
    shading = 0.85 + 0.3 * y[..., None]                           # brighter towards the camera
    image = palette[label] * shading + texture + rng.normal(0, 0.03, (h, w, 3))
    return np.clip(image, 0, 1).astype(np.float32), label


@register("dataset", "procedural")
class ProceduralDataset(ImageDataset):
    """Generated street scenes in the CamVid label space (11 classes, void 11; no void pixels drawn).

    Per-class colours are jittered per scene and overlaid with smooth and fine noise, so colour
    alone does not give the label. Sample ``i`` is a function of ``(seed, i)`` only.

    :param num: number of scenes, at most :data:`MAX_PROCEDURAL_SCENES`.
    :param height: image height in pixels, 32 to 65536 (``height x width`` at most :func:`max_image_pixels`).
    :param width: image width in pixels, 32 to 65536.
    :param seed: generator seed.
    """

    name = "procedural"
    num_classes, ignore_index, class_names = 11, 11, CAMVID_CLASSES

    def __init__(self, num: int = 8, height: int = 256, width: int = 256, seed: int = 0, *,
                 limit: int | None = None, crop: int | None = None, ids: list[str] | None = None):
        if (any(isinstance(v, bool) or not isinstance(v, int) for v in (num, height, width, seed))
                or not 1 <= num <= MAX_PROCEDURAL_SCENES
                or not 32 <= min(height, width) <= max(height, width) <= 2**16):
            raise ConfigError(f"procedural: need integers num in [1, {MAX_PROCEDURAL_SCENES}], height and width in "
                              f"[32, 65536] "
                              f"and seed, got num={num!r}, height={height!r}, width={width!r}, seed={seed!r}")
        if not 0 <= seed < 2**63:
            raise ConfigError(f"procedural: seed must be an integer in [0, 2**63), got {seed}")
        check_image_size(width, height, "procedural: each scene")
        self.height, self.width, self.seed = int(height), int(width), int(seed)
        entries = [(f"scene_{i:04d}", i) for i in range(int(num))]
        super().__init__(None, entries, limit=limit, crop=crop, ids=ids, num=num,
                         height=height, width=width, seed=seed)

    def _size(self, entry: Any) -> tuple[int, int]:
        return self.height, self.width

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image, label = procedural_scene(np.random.default_rng([self.seed, index]), self.height, self.width)
        return torch.from_numpy(image).permute(2, 0, 1).contiguous(), torch.from_numpy(label)


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
    from .files import file_sha256

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
