"""Issue 12: every bad input gets one line and exit 2 (never a traceback), before anything is
written; scenario files are bounded, unambiguous data; images are upright and of a bounded size."""
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from semsim.cli import main

BASE = {
    "name": "bad",
    "seed": 1,
    "data": {"name": "procedural", "num": 1, "height": 64, "width": 64},
    "budget": {"cbr": "1/16"},
    "channels": ["awgn"],
    "snr_db": [0, 10],
    "methods": ["jpeg+capacity"],
}


def _scenario(tmp_path, content=None, name="sc.yaml", **changes) -> Path:
    """Write a scenario (BASE with ``changes``, or ``content``: YAML text or bytes)."""
    path = tmp_path / name
    if content is None:
        content = yaml.safe_dump(dict(BASE, **changes), sort_keys=False)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def _error(capsys, *words) -> str:
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err + cap.out
    assert cap.err.startswith("semsim: error: ") and cap.err.count("\n") == 1, cap.err
    for w in words:
        assert w in cap.err, (w, cap.err)
    return cap.err


def _refused(tmp_path, capsys, path, *words, run=True):
    """``semsim validate`` and ``semsim run`` exit 2 with one line holding ``words``; no output."""
    assert main(["validate", str(path)]) == 2
    _error(capsys, *words)
    if run:
        out = tmp_path / "out"
        assert main(["run", str(path), "--output", str(out), "--quiet"]) == 2
        _error(capsys, *words)
        assert not out.exists()


def _png_header(path: Path, width: int, height: int) -> Path:
    """A PNG whose header says ``width x height`` (the pixels are never there): Pillow opens it."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    return path


def _photo(path: Path, h=64, w=64, **save) -> Path:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(path, **save)
    return path


# --- 2. one line and exit 2 ---------------------------------------------------------------------

@pytest.mark.parametrize("encoding, word", [("utf-16", "UTF-16"), ("utf-32", "UTF-32"), ("latin-1", "not UTF-8")])
def test_scenario_not_utf8(tmp_path, capsys, encoding, word):
    text = yaml.safe_dump(dict(BASE, description="café"), allow_unicode=True)
    _refused(tmp_path, capsys, _scenario(tmp_path, text.encode(encoding)), word, "save it as UTF-8")


@pytest.mark.parametrize("field, value, words", [
    ("snr_db", {"start": float("nan"), "stop": 10}, ["snr_db.start", "finite"]),
    ("snr_db", {"start": 0, "stop": float("inf")}, ["snr_db.stop", "finite"]),
    ("snr_db", {"start": 0, "stop": 10, "step": float("nan")}, ["snr_db.step", "finite"]),
    ("snr_db", {"start": 0, "stop": 10, "step": 1e-9}, ["more than 1000 values"]),
    ("snr_db", [0, float("nan")], ["finite"]),
    ("budget", {"cbr": "1e400"}, ["cbr", "finite", "1e400"]),
    ("budget", {"cbr": float("nan")}, ["cbr", "finite"]),
    ("budget", {"channel_uses": float("inf")}, ["channel_uses", "int"]),
    ("budget", {"channel_uses": 10**400}, ["channel_uses", "[1, 1000000000]"]),
    ("seed", 10**30, ["seed", "2**63"]),
    ("batch_size", 10**12, ["batch_size", "4096"]),
])
def test_non_finite_and_huge_numbers(tmp_path, capsys, field, value, words):
    _refused(tmp_path, capsys, _scenario(tmp_path, **{field: value}), *words)


def test_channel_uses_10e400_as_written(tmp_path, capsys):
    text = yaml.safe_dump(BASE, sort_keys=False).replace("cbr: 1/16", "channel_uses: 10e400")
    _refused(tmp_path, capsys, _scenario(tmp_path, text), "channel_uses", "int")
    text = text.replace("10e400", "10.0e+400")
    _refused(tmp_path, capsys, _scenario(tmp_path, text), "channel_uses", "inf")


def test_ber_numbers(tmp_path, capsys):
    ber = {"kind": "ber", "channels": ["awgn"], "snr_db": [0], "modulations": ["qpsk"], "code_rates": ["1/2"]}
    _refused(tmp_path, capsys, _scenario(tmp_path, yaml.safe_dump(dict(ber, max_bits=float("inf")))),
             "max_bits", "finite")
    _refused(tmp_path, capsys, _scenario(tmp_path, yaml.safe_dump(dict(ber, code_rates=["1e400"]))),
             "code rate", "finite")
    _refused(tmp_path, capsys, _scenario(tmp_path, yaml.safe_dump(dict(ber, codeword_length=1001))),
             "codeword_length")


@pytest.mark.parametrize("channel, words", [
    ({"name": "rician", "k_db": float("nan")}, ["k_db", "finite"]),
    ({"name": "rician", "k_db": 1e9}, ["k_db", "[-50, 50]"]),
    ({"name": "rician", "k_db": True}, ["k_db"]),
    ({"name": "rayleigh", "block_length": True}, ["block_length"]),
    ({"name": "tdl-a", "speed": -1}, ["speed", "[0, 1000]"]),
    ({"name": "tdl-a", "delay_spread": float("inf")}, ["delay_spread", "finite"]),
    ({"name": "tdl-a", "carrier_frequency": 0}, ["carrier_frequency"]),
    ({"name": "tdl-a", "subcarrier_spacing": 1e300}, ["subcarrier_spacing"]),
    ({"name": "tdl-a", "fft_size": 10**9}, ["fft_size", "4096"]),
    ({"name": "tdl-a", "pilot_ofdm_symbol_indices": [2, 2]}, ["pilot_ofdm_symbol_indices"]),
])
def test_channel_options_finite_and_in_range(tmp_path, capsys, channel, words):
    _refused(tmp_path, capsys, _scenario(tmp_path, channels=[channel]), *words, run=False)


def test_codec_options_finite(tmp_path, capsys):
    path = _scenario(tmp_path, methods=[{"name": "jpeg+ldpc", "mcs": "qpsk-1/2", "num_bp_iter": float("nan")}])
    _refused(tmp_path, capsys, path, "num_bp_iter", "finite", run=False)


def test_rician_nan_run_writes_nothing_and_transmit_refuses(tmp_path, capsys):
    path = _scenario(tmp_path, channels=[{"name": "rician", "k_db": float("nan")}])
    _refused(tmp_path, capsys, path, "k_db")
    image = _photo(tmp_path / "p.png")
    assert main(["transmit", str(image), "--method", "jpeg+capacity", "--channel", "{name: rician, k_db: .nan}",
                 "--out", str(tmp_path / "o.png")]) == 2
    _error(capsys, "k_db")
    assert not (tmp_path / "o.png").exists()


def test_transmit_budget_1e400(tmp_path, capsys):
    image = _photo(tmp_path / "p.png")
    for budget in ("1e400", "nan", "inf", "1/0"):
        assert main(["transmit", str(image), "--method", "jpeg+capacity", "--budget", budget,
                     "--out", str(tmp_path / "o.png")]) == 2
        _error(capsys, "cbr", budget)
    assert main(["transmit", str(image), "--method", "jpeg+capacity", "--channel-uses", str(10**20),
                 "--out", str(tmp_path / "o.png")]) == 2
    _error(capsys, "channel_uses")


def test_transmit_seed_range(tmp_path, capsys):
    image = _photo(tmp_path / "p.png")
    for seed in ("-1", str(10**30)):
        assert main(["transmit", str(image), "--method", "jpeg+capacity", "--seed", seed,
                     "--out", str(tmp_path / "o.png")]) == 2
        _error(capsys, "seed", "2**63")


def test_transmit_1x1_image_deepjscc(tmp_path, capsys):
    image = _photo(tmp_path / "one.png", 1, 1)
    assert main(["transmit", str(image), "--method", "deepjscc", "--out", str(tmp_path / "o.png")]) == 2
    _error(capsys, "0 channel uses", "1x1")
    assert not (tmp_path / "o.png").exists()


def test_huge_images_refused_from_the_header(tmp_path, capsys, monkeypatch):
    big = _png_header(tmp_path / "photo.png", 6000, 4000)
    bomb = _png_header(tmp_path / "bomb.png", 15000, 12000)  # 180 megapixels
    for image, words in ((big, ["6000x4000", "24.0 megapixels", "SEMSIM_MAX_IMAGE_PIXELS"]),
                         (bomb, ["bomb.png", "megapixels"])):
        assert main(["transmit", str(image), "--method", "jpeg+capacity", "--out", str(tmp_path / "o.png")]) == 2
        _error(capsys, *words)
    folder = tmp_path / "photos"
    folder.mkdir()
    _photo(folder / "a.png")
    big.rename(folder / "b.png")
    _refused(tmp_path, capsys, _scenario(tmp_path, data={"name": "folder", "path": str(folder)}), "b.png",
             "above the limit")
    # the limit is configurable
    monkeypatch.setenv("SEMSIM_MAX_IMAGE_PIXELS", "1000")
    (folder / "b.png").unlink()
    _refused(tmp_path, capsys, _scenario(tmp_path, data={"name": "folder", "path": str(folder)}), "a.png",
             "0.0 megapixels")
    monkeypatch.setenv("SEMSIM_MAX_IMAGE_PIXELS", "many")
    _refused(tmp_path, capsys, _scenario(tmp_path, data={"name": "folder", "path": str(folder)}),
             "SEMSIM_MAX_IMAGE_PIXELS")


def test_image_tensor_limits():
    import torch

    from semsim.errors import DataError
    from semsim.transmit import transmit

    with pytest.raises(DataError, match="NaN"):
        transmit(torch.full((3, 32, 32), float("nan")), method="jpeg+capacity")


@pytest.mark.parametrize("data, words", [
    ({"name": "procedural", "num": 10**14}, ["num", "100000"]),
    ({"name": "procedural", "height": 10**9}, ["height", "65536"]),
    ({"name": "procedural", "height": 60000, "width": 60000}, ["megapixels"]),
    ({"name": "procedural", "num": 2.5}, ["integers"]),
])
def test_huge_procedural(tmp_path, capsys, data, words):
    _refused(tmp_path, capsys, _scenario(tmp_path, data=data), *words)


def _no_point_runs(monkeypatch):
    from semsim.runner import Runner

    monkeypatch.setattr(Runner, "point_rows", lambda *a: pytest.fail("a point ran before the check"))


@pytest.mark.parametrize("where", ["under-file", "is-file", "sys", "read-only", "nul"])
def test_run_output_paths_refused_before_the_sweep(tmp_path, capsys, monkeypatch, where):
    if where == "read-only" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    _no_point_runs(monkeypatch)
    path = _scenario(tmp_path)
    (tmp_path / "afile").write_text("x")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    out = {"under-file": tmp_path / "afile" / "out", "is-file": tmp_path / "afile", "sys": Path("/sys/semsim-out"),
           "read-only": locked / "out", "nul": str(tmp_path / "a\x00b")}[where]
    try:
        assert main(["run", str(path), "--output", str(out), "--quiet"]) == 2
        _error(capsys, "output folder")
    finally:
        locked.chmod(0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "locked", "sc.yaml"]
    assert not list(locked.iterdir())


@pytest.mark.parametrize("where", ["folder", "under-file", "sys", "read-only"])
def test_transmit_output_paths_refused_before_the_transmission(tmp_path, capsys, monkeypatch, where):
    if where == "read-only" and os.geteuid() == 0:
        pytest.skip("root writes into read-only folders")
    import importlib

    monkeypatch.setattr(importlib.import_module("semsim.transmit"), "_image",
                        lambda *a: pytest.fail("the image was read before the check"))
    image = _photo(tmp_path / "p.png")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "dir.png").mkdir()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    out = {"folder": tmp_path / "dir.png", "under-file": tmp_path / "afile" / "o.png", "sys": Path("/sys/o.png"),
           "read-only": locked / "o.png"}[where]
    try:
        assert main(["transmit", str(image), "--method", "jpeg+capacity", "--out", str(out)]) == 2
        _error(capsys, "output")
    finally:
        locked.chmod(0o755)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "dir.png", "locked", "p.png"]


def test_other_commands_check_their_output_first(tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    (tmp_path / "r.csv").write_text("scenario,snr_db,point\n")
    path = _scenario(tmp_path)
    for argv in (["grid", str(path), "--out", str(tmp_path / "afile" / "g.png")],
                 ["report", "--results", str(tmp_path), "--out", str(tmp_path)],
                 ["train", str(path), "--output", str(tmp_path / "afile")],
                 ["plot", str(tmp_path / "r.csv"), "--out", str(tmp_path / "afile")]):
        assert main(argv) == 2, argv
        _error(capsys, "output")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "r.csv", "sc.yaml"]


# --- 3. a run failing before its first point leaves no files -------------------------------------

def test_crop_larger_than_an_image_leaves_no_files(tmp_path, capsys):
    _refused(tmp_path, capsys, _scenario(tmp_path, data={"name": "builtin", "limit": 1, "crop": 5000}),
             "crop=5000", "astronaut")


def test_truncated_png_in_a_folder_leaves_no_files(tmp_path, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    whole = _photo(folder / "a.png").read_bytes()
    (folder / "b.png").write_bytes(whole[: len(whole) // 2])
    _refused(tmp_path, capsys, _scenario(tmp_path, data={"name": "folder", "path": str(folder)}), "b.png")


def test_truncated_jpeg_fails_in_the_first_point_and_leaves_no_files(tmp_path, capsys):
    """A JPEG's header is whole but its pixels are not: the run stops in its first point and
    removes the folder it created."""
    folder = tmp_path / "photos"
    folder.mkdir()
    whole = _photo(folder / "a.jpg", quality=90).read_bytes()
    (folder / "a.jpg").write_bytes(whole[: len(whole) // 2])
    path = _scenario(tmp_path, data={"name": "folder", "path": str(folder)})
    out = tmp_path / "out"
    assert main(["run", str(path), "--output", str(out), "--quiet"]) == 2
    _error(capsys, "a.jpg")
    assert not out.exists()


def test_failure_mid_sweep_keeps_finished_points(tmp_path, capsys, monkeypatch):
    from semsim.runner import Runner
    from semsim.errors import DataError

    real, calls = Runner.point_rows, []

    def second_fails(self, pt):
        calls.append(pt)
        if len(calls) == 2:
            raise DataError("the disk went away")
        return real(self, pt)

    monkeypatch.setattr(Runner, "point_rows", second_fails)
    out = tmp_path / "out"
    assert main(["run", str(_scenario(tmp_path)), "--output", str(out), "--quiet"]) == 2
    _error(capsys, "disk went away")
    assert len(list((out / ".points").glob("*.csv"))) == 1 and (out / "results.csv").is_file()


# --- 4. scenario files are bounded, unambiguous data ---------------------------------------------

def test_alias_bomb_under_description(tmp_path, capsys):
    lines = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    text = yaml.safe_dump(BASE, sort_keys=False) + "description:\n  " + "\n  ".join(lines) + "\n"
    assert len(text) < 1000
    _refused(tmp_path, capsys, _scenario(tmp_path, text), "more than 10000 values", "aliases")


def test_recursive_alias(tmp_path, capsys):
    text = yaml.safe_dump(BASE, sort_keys=False) + "description: &d [a, *d]\n"
    _refused(tmp_path, capsys, _scenario(tmp_path, text), "alias")


def test_small_aliases_are_fine(tmp_path, capsys):
    text = yaml.safe_dump(dict(BASE, methods=[], budget={"cbr": "1/4"}), sort_keys=False).replace(
        "methods: []", "methods:\n- {name: jpeg+ldpc, mcs: &m [qpsk-1/2, 16qam-1/2]}\n- {name: avif+ldpc, mcs: *m}")
    assert main(["validate", str(_scenario(tmp_path, text))]) == 0
    assert "8 points" in capsys.readouterr().out


@pytest.mark.parametrize("description, words", [
    (["a", "list"], ["description", "str"]),
    ({"a": 1}, ["description", "str"]),
    ("x" * 20_000, ["description", "20000 characters"]),
])
def test_description_type_and_size(tmp_path, capsys, description, words):
    _refused(tmp_path, capsys, _scenario(tmp_path, description=description), *words)


def test_other_yaml_types_refused(tmp_path, capsys):
    text = yaml.safe_dump(BASE, sort_keys=False) + "description: !!binary aGVsbG8=\n"
    _refused(tmp_path, capsys, _scenario(tmp_path, text), "description", "bytes")
    text = yaml.safe_dump(BASE, sort_keys=False).replace("name: bad", "name: 2024-01-01")
    _refused(tmp_path, capsys, _scenario(tmp_path, text), "name", "date")
    text = yaml.safe_dump(BASE, sort_keys=False) + "3: three\n"
    _refused(tmp_path, capsys, _scenario(tmp_path, text), "key 3", "line 17", "string")
    _refused(tmp_path, capsys, _scenario(tmp_path, b"name: x\n" * 200_000), "larger than 1024 KiB")


def test_duplicate_keys_named_with_their_line(tmp_path, capsys):
    text = yaml.safe_dump(BASE, sort_keys=False) + "seed: 2\n"
    _refused(tmp_path, capsys, _scenario(tmp_path, text), "duplicate key 'seed' at line 17", "first at line 2")
    text = yaml.safe_dump(BASE, sort_keys=False).replace("num: 1", "num: 1\n  height: 32")
    _refused(tmp_path, capsys, _scenario(tmp_path, text), "duplicate key 'height'")
    text = yaml.safe_dump(BASE, sort_keys=False).replace("- awgn", "- {name: rayleigh, name: awgn}")
    _refused(tmp_path, capsys, _scenario(tmp_path, text), "duplicate key 'name'")


@pytest.mark.parametrize("changes, words", [
    ({"snr_db": [0, 10, 10]}, ["snr_db", "10 dB twice"]),
    ({"snr_db": [0, 10, 10.0000001]}, ["10 dB twice"]),
    ({"methods": ["jpeg+capacity", {"name": "jpeg+capacity"}]}, ["methods", "jpeg+capacity twice"]),
    ({"methods": [{"name": "jpeg+capacity"}, {"name": "jpeg+ldpc", "mcs": ["16qam-1/2", "16qam-1/2"]}],
      "budget": {"cbr": "1/4"}}, ["appears twice", "mcs=16qam-1/2"]),
    ({"channels": ["awgn", {"name": "awgn"}]}, ["channels", "awgn twice"]),
    ({"budget": [{"cbr": "1/16"}, {"cbr": 0.0625}]}, ["budget", "cbr=1/16 twice"]),
    ({"data": [BASE["data"], dict(BASE["data"])]}, ["data", "twice"]),
])
def test_repeats_refused(tmp_path, capsys, changes, words):
    _refused(tmp_path, capsys, _scenario(tmp_path, **changes), *words)


def test_train_scenario_numbers(tmp_path, capsys):
    train = {"kind": "train", "methods": ["deepjscc"], "budget": {"cbr": "1/16"}, "channel": "awgn",
             "data": {"reconstruction": {"name": "procedural", "num": 2, "height": 64, "width": 64}}}
    for changes, words in (({"optimizer": {"weight_decay": float("nan")}}, ["weight_decay", "finite"]),
                           ({"optimizer": {"lr": float("inf")}}, ["lr", "finite"]),
                           ({"validation": {"snr_db": ["ten"]}}, ["validation.snr_db", "int or float"]),
                           ({"crop": 10**6}, ["crop", "4096"])):
        assert main(["validate", str(_scenario(tmp_path, yaml.safe_dump(dict(train, **changes))))]) == 2
        _error(capsys, *words)


# --- 6. smaller ones -----------------------------------------------------------------------------

def test_folders_named_as_files(tmp_path, capsys):
    assert main(["run", str(tmp_path)]) == 2
    _error(capsys, "is a folder, not a scenario file")
    image = _photo(tmp_path / "p.png")
    assert main(["transmit", str(image), "--method", "deepjscc", "--weights", str(tmp_path),
                 "--out", str(tmp_path / "o.png")]) == 2
    _error(capsys, "is a folder, not a file")


def test_plot_of_a_scenario_file(tmp_path, capsys):
    assert main(["plot", str(_scenario(tmp_path))]) == 2
    _error(capsys, "not a semsim results CSV")
    assert main(["plot", str(tmp_path)]) == 2
    _error(capsys, "is a folder")
    (tmp_path / "u16.csv").write_bytes("a,b\n".encode("utf-16"))
    assert main(["plot", str(tmp_path / "u16.csv")]) == 2
    _error(capsys)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def test_exif_orientation_applied_to_images_and_labels(tmp_path):
    """A portrait photo stored landscape with EXIF orientation 6 is read upright; its size from
    the header agrees; a label map with the same orientation stays aligned pixel for pixel."""
    from semsim.data import build_dataset, load_image, load_label

    stored = np.zeros((20, 40, 3), np.uint8)   # 40 wide, 20 high as stored
    stored[:, :20] = (255, 0, 0)               # left half red, right half blue
    stored[:, 20:] = (0, 0, 255)
    root = tmp_path / "camvid"
    for folder in ("test", "testannot"):
        (root / folder).mkdir(parents=True)
    Image.fromarray(stored).save(root / "test" / "a.png", exif=_exif(6))
    label = Image.fromarray(np.where(stored[..., 0] > 0, 0, 1).astype(np.uint8), "L")
    label.save(root / "testannot" / "a.png", exif=_exif(6))

    image = load_image(root / "test" / "a.png")
    assert image.shape == (3, 40, 20), "rotated a quarter turn to portrait"
    labels = load_label(root / "testannot" / "a.png")
    assert labels.shape == (40, 20)
    red = image[0] > 0.5
    assert ((labels == 0) == red).all(), "image and label map stay aligned"
    ds = build_dataset({"name": "camvid", "root": str(root), "split": "test"})
    assert ds.sizes() == [(40, 20)] and tuple(ds[0].image.shape[-2:]) == (40, 20)

    jpeg = _photo(tmp_path / "portrait.jpg", 30, 50, exif=_exif(8))
    assert load_image(jpeg).shape == (3, 50, 30)
    assert build_dataset({"name": "folder", "path": str(tmp_path), "ids": ["portrait"]}).sizes() == [(50, 30)]


def test_label_of_another_size_refused(tmp_path, capsys):
    root = tmp_path / "camvid"
    for folder in ("test", "testannot"):
        (root / folder).mkdir(parents=True)
    _photo(root / "test" / "a.png", 64, 64)
    Image.fromarray(np.zeros((64, 48), np.uint8), "L").save(root / "testannot" / "a.png")
    path = _scenario(tmp_path, data={"name": "camvid", "root": str(root), "split": "test"},
                     methods=[{"name": "semantic", "task": "segmentation"}])
    _refused(tmp_path, capsys, path, "label", "48x64", "64x64")
