"""Datasets: real layouts, image conversion, errors, offline builtin photos, batching."""
from __future__ import annotations

import doctest
import json
import os
import re
import socket

import numpy as np
import pytest
import torch
from PIL import Image

import semsim.data as data
from semsim.data import (CamVidDataset, FolderDataset, ProceduralDataset, VocDataset, batches_by_size,
                         build_dataset, load_image, load_label, stack)
from semsim.errors import ConfigError, DataError

LANDSCAPE, PORTRAIT = (3, 512, 768), (3, 768, 512)


@pytest.fixture(scope="module")
def kodak(kodak_dir):
    ds = build_dataset({"name": "kodak", "root": str(kodak_dir)})
    return ds, [ds[i] for i in range(len(ds))]


def test_module_docstring_example():
    assert doctest.testmod(data).failed == 0


def test_kodak(kodak):
    ds, samples = kodak
    assert len(ds) == 24 and ds.ids == [f"kodim{i:02d}" for i in range(1, 25)]
    for s in samples:
        assert tuple(s.image.shape) in (LANDSCAPE, PORTRAIT) and s.image.dtype == torch.float32
        assert 0 <= s.image.min() and s.image.max() <= 1 and s.label is None
    assert tuple(samples[3].image.shape) == PORTRAIT and samples[3].id == "kodim04"
    assert json.loads(json.dumps(ds.describe()))["count"] == 24


def test_kodak_default_path_uses_shared_beside_cwd(kodak_dir, tmp_path, monkeypatch):
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (tmp_path / "shared" / "data" / "kodak").symlink_to(kodak_dir)
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    monkeypatch.delenv("SEMSIM_SHARED", raising=False)
    assert len(build_dataset({"name": "kodak", "limit": 3})) == 3
    monkeypatch.setenv("ELSEWHERE", str(tmp_path / "shared"))
    monkeypatch.setenv("SEMSIM_SHARED", "$ELSEWHERE")
    assert len(build_dataset("kodak")) == 24


def test_centre_crop_is_slice_of_full_image(kodak_dir, kodak):
    _, samples = kodak
    cropped = FolderDataset(str(kodak_dir), crop=224, ids=["kodim04", "kodim01"])
    assert cropped.ids == ["kodim04", "kodim01"]
    for s in cropped:
        full = samples[int(s.id[-2:]) - 1].image
        h, w = full.shape[-2:]
        top, left = (h - 224) // 2, (w - 224) // 2
        assert s.image.shape == (3, 224, 224)
        assert torch.equal(s.image, full[:, top:top + 224, left:left + 224])
    with pytest.raises(ConfigError, match="kodim04"):
        FolderDataset(str(kodak_dir), crop=600, ids=["kodim04"])[0]
    assert len(FolderDataset(str(kodak_dir), limit=5)) == 5


def test_builtin_photos_load_without_network(monkeypatch, tmp_path):
    def no_network(*args, **kwargs):
        raise OSError("network blocked by test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    monkeypatch.setenv("SKIMAGE_DATADIR", str(tmp_path / "empty-pooch-cache"))
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    ds = build_dataset("builtin")
    samples = list(ds)
    colour = [not torch.equal(s.image[0], s.image[1]) for s in samples]
    assert len(samples) >= 3 and all(colour[:3])
    for s in samples:
        assert s.image.shape[0] == 3 and s.image.dtype == torch.float32 and 0 <= s.image.min() <= s.image.max() <= 1
    assert not (tmp_path / "empty-pooch-cache").exists()


def test_modes_are_converted_to_rgb(tmp_path):
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (10, 12), dtype=np.uint8)
    Image.fromarray(grey, "L").save(tmp_path / "grey.png")
    Image.fromarray(grey > 127).save(tmp_path / "bits.png")
    Image.fromarray(grey.astype(np.uint16) * 257).save(tmp_path / "deep.png")
    rgba = np.zeros((10, 12, 4), np.uint8)
    rgba[..., 0], rgba[:5, :, 3] = 255, 255  # red top half, bottom half fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "alpha.png")
    pal = Image.fromarray((grey % 3).astype(np.uint8), "P")
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    pal.save(tmp_path / "palette.png")

    expected_grey = torch.from_numpy(grey / 255.0).float()
    for name in ("grey", "deep", "bits"):
        image = load_image(tmp_path / f"{name}.png")
        assert image.shape == (3, 10, 12) and image.dtype == torch.float32
        assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    assert torch.allclose(load_image(tmp_path / "grey.png")[0], expected_grey)
    assert torch.allclose(load_image(tmp_path / "deep.png")[0], expected_grey, atol=1e-6)
    assert set(np.unique(load_image(tmp_path / "bits.png").numpy()).tolist()) == {0.0, 1.0}
    alpha = load_image(tmp_path / "alpha.png")
    assert torch.equal(alpha[:, 0, 0], torch.tensor([1.0, 0, 0]))
    assert torch.equal(alpha[:, -1, 0], torch.ones(3))  # composited on white
    palette = load_image(tmp_path / "palette.png")
    assert torch.equal(palette.argmax(0), torch.from_numpy(grey % 3).long())
    assert torch.equal(load_label(tmp_path / "palette.png"), torch.from_numpy(grey % 3).long())
    assert load_label(tmp_path / "palette.png").dtype == torch.int64


def test_corrupt_files_raise_data_error_naming_the_file(tmp_path):
    junk = tmp_path / "junk.png"
    junk.write_bytes(np.random.default_rng(0).bytes(2000))
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(noise).save(tmp_path / "whole.png")
    cut = tmp_path / "cut.png"
    cut.write_bytes((tmp_path / "whole.png").read_bytes()[:6000])
    for path in (junk, cut, tmp_path / "absent.png"):
        with pytest.raises(DataError, match=re.escape(f"cannot read image '{path}'")):
            load_image(path)
    with pytest.raises(DataError, match="cut.png"):
        load_label(cut)
    with pytest.raises(DataError, match="whole.png"):
        load_label(tmp_path / "whole.png")  # RGB, not class indices
    with pytest.raises(DataError, match="cut.png"):
        FolderDataset(str(tmp_path), ids=["cut"])[0]


def test_missing_folders_and_bad_options(tmp_path, shared):
    missing = tmp_path / "nowhere"
    for spec in ({"name": "folder", "root": str(missing)}, {"name": "voc", "root": str(missing)},
                 {"name": "camvid", "root": str(missing)}, {"name": "bsds500", "root": str(missing)}):
        with pytest.raises(DataError, match=re.escape(str(missing))):
            build_dataset(spec)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no image files"):
        FolderDataset(str(tmp_path / "empty"))
    with pytest.raises(DataError, match="layout"):
        VocDataset(root=str(tmp_path / "empty"))
    for name, valid in (("voc", "'train', 'val', 'trainval'"), ("camvid", "'train', 'val', 'test'"),
                        ("bsds500", "'train', 'val', 'test'")):
        with pytest.raises(ConfigError, match=f"unknown {name} split 'dev'; valid choices: {valid}"):
            build_dataset({"name": name, "split": "dev"})
    with pytest.raises(ConfigError, match="available: '2007_000129', '2007_000346'"):
        VocDataset(root=str(shared / "data" / "voc_subset"), ids=["2007_999999"])
    with pytest.raises(ConfigError, match="crop"):
        build_dataset({"name": "procedural", "crop": 0})
    with pytest.raises(ConfigError, match="valid choices"):
        build_dataset({"name": "kodak", "split": "val"})


def test_camvid_val(shared):
    ds = CamVidDataset(root=str(shared / "data" / "camvid"), split="val")
    assert len(ds) == 101 and len(ds.class_names) == 11 == ds.num_classes and ds.ignore_index == 11
    seen = set()
    for s in ds:
        assert s.image.shape == (3, 360, 480) and s.label.shape == (360, 480) and s.label.dtype == torch.int64
        seen |= set(np.unique(s.label.numpy()).tolist())  # np: torch.unique is slow on CPU
    assert seen <= set(range(12)) and len(seen) == 12


def test_camvid_segnet_lists_and_folder_fallback(shared, tmp_path):
    src = shared / "data" / "camvid"
    for d in ("val", "valannot"):
        (tmp_path / d).symlink_to(src / d)
    names = sorted(os.listdir(src / "val"))[:3]
    (tmp_path / "val.txt").write_text("".join(f"/SegNet/CamVid/val/{n} /SegNet/CamVid/valannot/{n}\n"
                                              for n in names))
    listed = CamVidDataset(root=str(tmp_path))
    assert listed.ids == [n[:-4] for n in names]
    assert torch.equal(listed[2].label, load_label(src / "valannot" / names[2]))
    (tmp_path / "val.txt").unlink()
    assert len(CamVidDataset(root=str(tmp_path))) == 101


def test_voc_subset_val(shared):
    ds = VocDataset(root=str(shared / "data" / "voc_subset"))
    assert ds.ids == ["2007_000129", "2007_000346"] and len(ds.class_names) == 21
    for s in ds:
        values = set(np.unique(s.label.numpy()).tolist())
        assert 255 in values and max(values - {255}) <= 20 and len(values) > 2
        assert s.image.shape[-2:] == s.label.shape


def test_voc_accepts_vocdevkit_layout(shared, tmp_path):
    src, voc = shared / "data" / "voc_subset", tmp_path / "VOCdevkit" / "VOC2012"
    voc.mkdir(parents=True)
    for d in ("JPEGImages", "SegmentationClass", "ImageSets"):
        (voc / d).symlink_to(src / d, target_is_directory=True)
    direct = VocDataset(root=str(src), split="trainval")
    for root in (tmp_path, tmp_path / "VOCdevkit", voc):
        ds = VocDataset(root=str(root), split="trainval")
        assert ds.ids == direct.ids and len(ds) == 6
    sample = VocDataset(root=str(tmp_path), ids=["2007_000346"])[0]
    assert torch.equal(sample.label, direct[2].label) and torch.equal(sample.image, direct[2].image)

    partial = tmp_path / "partial"
    (partial / "ImageSets" / "Segmentation").mkdir(parents=True)
    (partial / "JPEGImages").symlink_to(src / "JPEGImages")
    (partial / "ImageSets" / "Segmentation" / "train.txt").write_text("2007_000063\n")
    with pytest.raises(DataError, match="split lists present: 'train'"):
        VocDataset(root=str(partial), split="val")


def test_div2k_parent_folder(tmp_path, monkeypatch):
    hr = tmp_path / "DIV2K" / "DIV2K_valid_HR"
    hr.mkdir(parents=True)
    pixels = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(hr / "0801.png")
    (hr / "notes.txt").write_text("not an image")
    monkeypatch.setenv("DIV2K_ROOT", str(tmp_path / "DIV2K"))
    for path in ("$DIV2K_ROOT", str(hr)):
        ds = build_dataset({"name": "folder", "root": path})
        assert ds.ids == ["0801"] and str(ds.root) == str(hr)
        assert torch.equal(ds[0].image, torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)
    (tmp_path / "DIV2K" / "DIV2K_train_HR").mkdir()
    with pytest.raises(DataError, match="several"):
        FolderDataset(str(tmp_path / "DIV2K"))


def test_procedural_scenes():
    a, b = ProceduralDataset(num=3, height=96, width=128), ProceduralDataset(num=5, height=96, width=128)
    other = ProceduralDataset(num=3, height=96, width=128, seed=1)
    for i in range(3):
        assert torch.equal(a[i].image, b[i].image) and torch.equal(a[i].label, b[i].label)
        assert not torch.equal(a[i].label, other[i].label) and not torch.equal(a[i].image, other[i].image)
        assert a[i].image.shape == (3, 96, 128) and a[i].label.shape == (96, 128)
        assert 0 <= a[i].label.min() and a[i].label.max() <= 10 and len(np.unique(a[i].label.numpy())) >= 6
        assert 0 <= a[i].image.min() and a[i].image.max() <= 1
    assert not torch.equal(a[0].label, a[1].label)
    # Colour alone must not give the label: a class's pixels vary well beyond rounding.
    sky = a[0].image[:, a[0].label == 0]
    assert sky.std(dim=1).min() > 0.03


def test_batches_by_size_and_stack(kodak_dir):
    ds = FolderDataset(str(kodak_dir))
    batches = list(batches_by_size(ds, 8))
    ids = [s.id for batch in batches for s in batch]
    assert sorted(ids) == ds.ids and len(ids) == 24
    shapes = {tuple(batch[0].image.shape) for batch in batches}
    assert shapes == {LANDSCAPE, PORTRAIT}
    for batch in batches:
        assert 1 <= len(batch) <= 8 and len({tuple(s.image.shape) for s in batch}) == 1
        order = [ds.ids.index(s.id) for s in batch]
        assert order == sorted(order)
    assert [s.id for s in batches[0]] == [s.id for s in ds if tuple(s.image.shape) == LANDSCAPE][:8]
    images, labels, batch_ids = stack(batches[0])
    assert images.shape == (8, *LANDSCAPE) and labels is None and batch_ids == [s.id for s in batches[0]]
    with pytest.raises(DataError, match="batches_by_size"):
        stack([ds[0], ds[3]])
    images, labels, _ = stack(list(ProceduralDataset(num=2, height=32, width=48)))
    assert images.shape == (2, 3, 32, 48) and labels.shape == (2, 32, 48) and labels.dtype == torch.int64


def test_folder_path_is_the_old_name_of_root(tmp_path):
    Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(tmp_path / "a.png")
    with pytest.warns(FutureWarning, match="option 'path' is deprecated; write root"):
        old = build_dataset({"name": "folder", "path": str(tmp_path)})
    assert old.ids == build_dataset({"name": "folder", "root": str(tmp_path)}).ids == ["a"]
    with pytest.raises(ConfigError, match="give root only"):
        build_dataset({"name": "kodak", "root": str(tmp_path), "path": str(tmp_path)})
