"""The registered datasets: photo folders (``folder``, ``kodak``, ``bsds500``, ``builtin``) for
reconstruction, labelled scenes (``voc``, ``camvid``, ``procedural``) for segmentation.

A dataset on disk takes its folder as ``root`` (``folder`` and ``kodak`` also accept the former
spelling ``path``, with a deprecation message).
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, DataError, choices
from ..registry import register
from .base import ImageDataset
from .images import IMAGE_SUFFIXES, check_image_size, expand_path, image_files

CAMVID_CLASSES = ("Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence",
                  "Car", "Pedestrian", "Bicyclist")
VOC_CLASSES = ("background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
               "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")
# Photos scikit-image ships inside its package (not fetched with pooch); colour ones first.
BUILTIN_PHOTOS = ("astronaut.png", "coffee.png", "chelsea.png", "rocket.jpg", "motorcycle_left.png",
                  "camera.png")
MAX_PROCEDURAL_SCENES = 100_000
#: where the Kodak photos are by default
KODAK_ROOT = "$SEMSIM_SHARED/data/kodak"


def renamed_option(dataset: str, old: str, old_value: Any, new: str, new_value: Any) -> Any:
    """The value of option ``new``, taking it from its former name ``old`` with a one-line
    :class:`FutureWarning` (shown to users by default); :class:`ConfigError` if both are given."""
    if old_value is None:
        return new_value
    if new_value is not None:
        raise ConfigError(f"{dataset}: give {new} only ({old} is its former name), not both")
    warnings.warn(f"dataset {dataset!r}: option {old!r} is deprecated; write {new}: {old_value}", FutureWarning,
                  stacklevel=3)
    return old_value


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


def _photo_entries(folder: Path) -> list[tuple[str, tuple[Path, None]]]:
    return [(p.stem, (p, None)) for p in image_files(folder)]


@register("dataset", "folder")
class FolderDataset(ImageDataset):
    """Every image file in a folder (``IMAGE_SUFFIXES``), sorted by name; ids are file stems.

    If ``root`` holds no images but exactly one subfolder whose name ends in ``_HR`` (DIV2K's
    ``DIV2K_valid_HR`` / ``DIV2K_train_HR``), that subfolder is used.

    :param root: the folder.
    :param path: the former name of ``root`` (deprecated: a warning says to write ``root``).
    """

    name = "folder"

    def __init__(self, root: str | None = None, *, path: str | None = None, limit: int | None = None,
                 crop: int | None = None, ids: list[str] | None = None):
        root = renamed_option(self.name, "path", path, "root", root)
        if root is None:
            raise ConfigError(f"{self.name}: give the folder of images as root")
        folder = _require_dir(expand_path(root), "a folder of image files")
        if not image_files(folder):
            hr = [d for d in sorted(folder.iterdir()) if d.is_dir() and d.name.endswith("_HR")]
            if len(hr) != 1:
                found = f"; it has several '*_HR' subfolders: {choices(d.name for d in hr)}" if hr else ""
                raise DataError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) in '{folder}'{found}; "
                                "expected a folder of images, or one holding a single '*_HR' folder (DIV2K)")
            folder = hr[0]
        super().__init__(folder, _photo_entries(folder), limit=limit, crop=crop, ids=ids)


@register("dataset", "kodak")
class KodakDataset(FolderDataset):
    """The 24 Kodak photos (768x512 landscape or 512x768 portrait PNG), ids ``kodim01`` … ``kodim24``.

    :param root: the folder; ``path`` is its deprecated former name.
    """

    name = "kodak"

    def __init__(self, root: str = KODAK_ROOT, *, path: str | None = None, limit: int | None = None,
                 crop: int | None = None, ids: list[str] | None = None):
        root = renamed_option(self.name, "path", path, "root", None if root == KODAK_ROOT else root) or KODAK_ROOT
        super().__init__(root, limit=limit, crop=crop, ids=ids)


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
            pairs = [[p, base / f"{split}annot" / p.name] for p in image_files(base / split)]
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
