"""The runner: tidy CSV with provenance, budget cap, per-point reruns, resume after SIGKILL, plots."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

import semsim
from semsim.codec import Budget
from semsim.results import read_csv
from semsim.runner import COLUMNS, TIMING_COLUMNS

SCENARIO = {
    "name": "runtest",
    "seed": 11,
    "data": {"name": "builtin", "limit": 2},
    "budget": {"cbr": "1/16"},
    "channels": ["awgn", "rayleigh"],
    "snr_db": [3, 15],
    "methods": [{"name": "jpeg+ldpc", "mcs": ["16qam-1/2"]}, "jpeg+capacity"],
}


def _strip_timing(rows):
    return [{k: v for k, v in r.items() if k not in TIMING_COLUMNS} for r in rows]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    path = semsim.run(dict(SCENARIO), output=out, progress=False)
    return out, read_csv(path)


def test_csv_is_tidy_and_complete(finished):
    out, rows = finished
    assert list(rows[0].keys()) == list(COLUMNS)
    assert len(rows) == 2 * 2 * 2 * 2  # channels x snr x methods x images
    for r in rows:
        h, w = int(r["height"]), int(r["width"])
        cap = Budget("cbr", 1 / 16).channel_uses(h, w)
        assert 0 < int(r["channel_uses"]) <= cap
        assert float(r["cbr"]) == pytest.approx(int(r["channel_uses"]) / (3 * h * w), rel=1e-5)
        assert r["failed"] in ("true", "false")
        assert r["task"] == "reconstruction" and r["scenario"] == "runtest"
        assert math.isnan(float(r["miou"]))
    ldpc = [r for r in rows if r["method"].startswith("JPEG+LDPC")]
    assert {r["mcs"] for r in ldpc} == {"16qam-1/2"} and {r["code_rate"] for r in ldpc} == {"1/2"}
    # above the 16QAM-1/2 threshold over AWGN the link is error-free: PSNR of the JPEG itself
    good = [float(r["psnr"]) for r in ldpc if r["channel"] == "awgn" and float(r["snr_db"]) == 15]
    assert min(good) > 20


def test_provenance(finished):
    out, _ = finished
    prov = json.loads((out / "provenance.json").read_text())
    sc = semsim.load_scenario(dict(SCENARIO))
    assert prov["scenario_hash"] == sc.hash
    assert prov["versions"]["sionna-no-rt"] and prov["versions"]["torch"]
    assert prov["device"] == "cpu" and "git_commit" in prov and "weights_sha256" in prov


def test_one_point_rerun_alone_gives_same_numbers(finished, tmp_path):
    out, rows = finished
    sc = semsim.load_scenario(dict(SCENARIO))
    pt = [p for p in sc.points() if "rayleigh" in p.key and "jpeg+ldpc" in p.key][1]
    alone = read_csv(semsim.run(dict(SCENARIO), output=tmp_path / "alone", only=[pt.id], progress=False))
    assert len(alone) == 2
    assert _strip_timing(alone) == _strip_timing([r for r in rows if r["point"] == pt.id])


def test_rerun_skips_finished_points(finished):
    out, rows = finished
    t0 = time.perf_counter()
    again = read_csv(semsim.run(dict(SCENARIO), output=out, progress=False))
    assert again == rows  # nothing recomputed, so even the timing column is unchanged
    assert time.perf_counter() - t0 < 10


def test_edited_scenario_reuses_shared_points(finished, tmp_path):
    import shutil

    out, rows = finished
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    edited = dict(SCENARIO, snr_db=[3, 9, 15])  # one SNR added
    t0 = time.perf_counter()
    new = read_csv(semsim.run(edited, output=copy, progress=False))
    assert len(new) == 24
    same = [r for r in new if float(r["snr_db"]) in (3, 15)]
    assert same == rows  # reused as they were, timing included
    reseeded = read_csv(semsim.run(dict(SCENARIO, seed=12), output=copy, progress=False))
    assert _strip_timing(reseeded) != _strip_timing(rows), "another scenario seed recomputes every point"


def test_plots_written(finished):
    out, _ = finished
    paths = semsim.plot(out / "results.csv")
    assert any(p.suffix == ".png" for p in paths) and any(p.suffix == ".pdf" for p in paths)
    assert all(p.stat().st_size > 1000 for p in paths)


def test_sigkill_then_resume_gives_identical_csv(finished, tmp_path):
    _, reference = finished
    sc_path = tmp_path / "sc.yaml"
    sc_path.write_text(yaml.safe_dump(SCENARIO))
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "semsim", "run", str(sc_path), "--output", str(out), "--quiet", "--no-plots"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = out / ".points"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if parts.is_dir() and len(list(parts.glob("*.csv"))) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(parts.glob("*.csv")))
    assert 2 <= done < 8
    partial = read_csv(out / "results.csv")
    assert len(partial) == 2 * done  # only whole points
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600)
    assert _strip_timing(read_csv(out / "results.csv")) == _strip_timing(reference)


# --- BER scenarios ------------------------------------------------------------------------------

BER = {
    "name": "bertest", "kind": "ber", "seed": 5,
    "channels": ["awgn", {"name": "rayleigh", "block_length": 1}],
    "snr_db": [2, 6], "modulations": ["qpsk", "16qam"], "code_rates": ["uncoded", "1/2"],
    "min_errors": 200, "max_bits": 200_000,
}


def test_ber_scenario_runs_and_plots(tmp_path):
    from semsim.ber import ber_qam_awgn

    rows = read_csv(semsim.run(dict(BER), output=tmp_path / "ber", progress=False))
    assert len(rows) == 2 * 2 * 2 * 2
    for r in rows:
        assert float(r["ebno_db"]) == pytest.approx(
            float(r["snr_db"]) - 10 * math.log10({"qpsk": 2, "16qam": 4}[r["modulation"]]
                                                  * (1.0 if r["code_rate"] == "uncoded" else 0.5)), abs=1e-4)
        if r["channel"] == "awgn" and r["code_rate"] == "uncoded":
            theory = ber_qam_awgn(r["modulation"], float(r["snr_db"]))
            assert float(r["ber"]) == pytest.approx(theory, rel=0.15)
    coded = {(r["channel"], r["modulation"], float(r["snr_db"])): float(r["ber"])
             for r in rows if r["code_rate"] == "1/2"}
    assert coded[("awgn", "qpsk", 6.0)] < 1e-4  # QPSK r=1/2 is far above its threshold at 6 dB
    paths = semsim.plot(tmp_path / "ber" / "results.csv", x="ebno")
    assert {p.name for p in paths} >= {"ber_awgn_ebno.png", "ber_awgn_ebno.pdf"}


# --- several budgets: metric-vs-CBR plot ----------------------------------------------------------

def test_several_budgets_give_cbr_plot(tmp_path):
    sc = dict(SCENARIO, budget=[{"cbr": "1/32"}, {"cbr": "1/8"}], channels=["awgn"], snr_db=[12],
              methods=["jpeg+capacity"], data={"name": "builtin", "limit": 1})
    rows = read_csv(semsim.run(sc, output=tmp_path / "cbr", progress=False))
    psnr_by = {r["budget"]: float(r["psnr"]) for r in rows}
    assert psnr_by["cbr=1/8"] > psnr_by["cbr=1/32"] + 2
    names = {p.name for p in semsim.plot(tmp_path / "cbr" / "results.csv")}
    assert any(n.startswith("psnr_vs_cbr") and n.endswith(".png") for n in names)


# --- segmentation path and the budget cap, with small codecs defined here -------------------------

from semsim.codec import Codec, Task  # noqa: E402
from semsim.registry import _REGISTRY, register  # noqa: E402


class _ConstantSegmenter(Codec):
    """Sends a few symbols, predicts class ``guess`` everywhere: a segmentation codec for tests."""

    task = Task.SEGMENTATION
    label = "constant"

    def __init__(self, budget, guess: int = 3, num_classes: int = 11, overshoot: int = 0):
        super().__init__(budget)
        self.guess, self.num_classes, self.overshoot = guess, num_classes, overshoot

    def encode(self, images, snr_db):
        n = self.max_channel_uses(*images.shape[-2:]) + self.overshoot
        return torch.ones(images.shape[0], n, dtype=torch.complex64)

    def decode(self, received, info, snr_db, image_size):
        logits = torch.zeros(received.shape[0], self.num_classes, *image_size)
        logits[:, self.guess] = 1
        return logits


if "test-constant-seg" not in _REGISTRY["codec"]:
    register("codec", "test-constant-seg")(_ConstantSegmenter)


def test_segmentation_miou_is_accumulated_over_the_dataset(tmp_path):
    import numpy as np

    from semsim.data import build_dataset

    data = {"name": "procedural", "num": 3, "height": 96, "width": 128}
    sc = dict(SCENARIO, data=data, methods=[{"name": "test-constant-seg", "guess": 3}], channels=["awgn"],
              snr_db=[5], budget={"channel_uses": 500})
    rows = read_csv(semsim.run(sc, output=tmp_path / "seg", progress=False))
    assert len(rows) == 3 and {r["task"] for r in rows} == {"segmentation"}
    labels = np.concatenate([s.label.numpy().ravel() for s in build_dataset(data)])
    labels = labels[labels != 11]
    present = np.unique(labels)
    # predicting class 3 everywhere: IoU(3) = |label 3| / N, every other present class 0
    expect = ((labels == 3).sum() / labels.size) / len(present)
    assert [float(r["miou"]) for r in rows] == pytest.approx([expect] * 3, rel=1e-5)
    assert all(math.isnan(float(r["psnr"])) for r in rows)


def test_runner_refuses_a_method_above_the_budget(tmp_path, capsys):
    from semsim.cli import main

    sc = dict(SCENARIO, data={"name": "procedural", "num": 1, "height": 64, "width": 64},
              methods=[{"name": "test-constant-seg", "overshoot": 1}], channels=["awgn"], snr_db=[5],
              budget={"channel_uses": 500})
    path = tmp_path / "sc.yaml"
    path.write_text(yaml.safe_dump(sc))
    assert main(["run", str(path), "--output", str(tmp_path / "o"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "would use 501 channel uses" in err and "cap 500" in err
    assert not (tmp_path / "o" / "results.csv").exists() or len(read_csv(tmp_path / "o" / "results.csv")) == 0


# --- a point's identity: weights, data and defaults it was computed with --------------------------

@pytest.fixture
def hash_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSIM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _photos(folder, n=2, size=32, seed=0):
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def _last_run(out):
    return json.loads((out / "provenance.json").read_text())["last_run"]


def test_replaced_weights_recompute_their_points_and_nothing_else(tmp_path, hash_cache, capsys):
    from semsim.registry import build
    from semsim.weights import save_weights

    weights = tmp_path / "w" / "deepjscc.safetensors"

    def write_weights(seed):
        torch.manual_seed(seed)
        codec = build("codec", {"name": "deepjscc", "preset": "paper"}, budget=Budget("cbr", 1 / 16))
        save_weights(codec, weights, {"train_channel": "awgn"})

    write_weights(0)
    sc = dict(SCENARIO, data={"name": "folder", "path": str(_photos(tmp_path / "photos"))}, channels=["awgn"],
              snr_db=[10], methods=[{"name": "deepjscc", "preset": "paper", "weights": str(weights)},
                                    "jpeg+capacity"])
    out = tmp_path / "out"
    first = read_csv(semsim.run(sc, output=out, progress=False))
    assert len(first) == 4

    again = read_csv(semsim.run(sc, output=out, progress=False))  # nothing touched: every point reused
    assert again == first and _last_run(out)["points_run"] == 0
    prov = json.loads((out / "provenance.json").read_text())
    from semsim.files import file_sha256

    label = f"deepjscc(preset=paper,weights={weights})"
    assert prov["weights_sha256"] == {label: file_sha256([weights])[0]}, "complete after a resumed run"
    assert set(prov["data_sha256"]) == {f"folder(path={tmp_path / 'photos'})"}

    stat = weights.stat()
    write_weights(1)  # other weights, same path, same size; even the modification time put back
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert weights.stat().st_size == stat.st_size
    capsys.readouterr()
    new = read_csv(semsim.run(sc, output=out, progress=False))
    last = _last_run(out)
    assert last["points_run"] == last["points_recomputed"] == 1
    assert last["recomputed_because"] == {f"weights of method {label} changed": 1}
    assert "recomputing 1 point(s)" in capsys.readouterr().err
    jscc = [r for r in new if r["method"].startswith("Deep JSCC")]
    assert [r["psnr"] for r in jscc] != [r["psnr"] for r in first if r["method"].startswith("Deep JSCC")]
    assert [r for r in new if r not in jscc] == [r for r in first if not r["method"].startswith("Deep JSCC")]
    assert json.loads((out / "provenance.json").read_text())["weights_sha256"][label] == file_sha256([weights])[0]


def test_an_edited_image_recomputes_the_points_of_its_dataset(tmp_path, hash_cache):
    from PIL import Image

    photos = _photos(tmp_path / "photos")
    sc = dict(SCENARIO, data={"name": "folder", "path": str(photos)}, channels=["awgn"], snr_db=[5, 20],
              methods=["jpeg+capacity"])
    out = tmp_path / "out"
    first = read_csv(semsim.run(sc, output=out, progress=False))
    Image.new("RGB", (32, 32), (200, 30, 30)).save(photos / "p1.png")
    new = read_csv(semsim.run(sc, output=out, progress=False))
    assert _last_run(out)["points_recomputed"] == 2
    assert list(_last_run(out)["recomputed_because"]) == [f"content of data folder(path={photos}) changed"]
    assert [r["psnr"] for r in new if r["image"] == "p1"] != [r["psnr"] for r in first if r["image"] == "p1"]


def test_a_changed_code_default_recomputes_the_points(tmp_path, hash_cache, monkeypatch):
    sc = dict(SCENARIO, data={"name": "procedural", "num": 1, "height": 64, "width": 64},
              methods=["test-constant-seg"], channels=["awgn"], snr_db=[5], budget={"channel_uses": 500})
    out = tmp_path / "out"
    first = read_csv(semsim.run(sc, output=out, progress=False))
    semsim.run(sc, output=out, progress=False)
    assert _last_run(out)["points_run"] == 0
    monkeypatch.setattr(_ConstantSegmenter.__init__, "__defaults__", (5, 11, 0))  # guess 3 -> 5
    new = read_csv(semsim.run(sc, output=out, progress=False))
    assert _last_run(out)["recomputed_because"] == {"options of method test-constant-seg changed": 1}
    assert new[0]["miou"] != first[0]["miou"]


# --- output files and concurrency -----------------------------------------------------------------

TINY = dict(SCENARIO, data={"name": "procedural", "num": 1, "height": 48, "width": 48}, channels=["awgn"],
            snr_db=[5, 20], methods=["jpeg+capacity"])


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_output_files_follow_the_umask(tmp_path, umask, mode):
    from semsim.files import atomic_file

    old = os.umask(umask)
    try:
        with atomic_file(tmp_path / "x.txt") as tmp:
            assert tmp.stat().st_mode & 0o777 == 0o600  # private while it is written
            tmp.write_text("x")
        out = tmp_path / "out"
        semsim.run(dict(TINY), output=out, progress=False)
    finally:
        os.umask(old)
    files = [tmp_path / "x.txt", out / "results.csv", out / "provenance.json", *(out / ".points").iterdir()]
    assert {oct(p.stat().st_mode & 0o777) for p in files} == {oct(mode)}


def test_a_killed_runs_temporary_files_are_removed(tmp_path):
    out = tmp_path / "out"
    semsim.run(dict(TINY), output=out, progress=False)
    orphans = [out / ".results.csv.abc123.tmp", out / ".provenance.json.x.tmp", out / ".points" / ".p.csv.y.tmp"]
    for p in orphans:
        p.write_text("torn")
    (out / "notes.tmp").write_text("not ours")
    semsim.run(dict(TINY), output=out, progress=False)
    assert not any(p.exists() for p in orphans) and (out / "notes.tmp").exists()


def test_a_second_run_with_other_inputs_or_fresh_is_refused(tmp_path, monkeypatch, capsys):
    from semsim.cli import main
    from semsim.errors import OutputError
    from semsim.runner import Runner

    out = tmp_path / "out"
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(dict(TINY, snr_db=[7])))
    seen = {}
    compute = Runner.point_rows

    def meanwhile(self, pt):  # while the first run holds the folder, others try it
        if not seen:
            seen["other"] = main(["run", str(other), "--output", str(out), "--quiet", "--no-plots"])
            seen["other_err"] = capsys.readouterr().err
            with pytest.raises(OutputError, match="--fresh would delete its points"):
                semsim.run(dict(TINY), output=out, fresh=True, progress=False)
            seen["same"] = read_csv(semsim.run(dict(TINY), output=out, progress=False))  # same inputs share it
        return compute(self, pt)

    monkeypatch.setattr(Runner, "point_rows", meanwhile)
    rows = read_csv(semsim.run(dict(TINY), output=out, progress=False))
    assert seen["other"] == 2 and "in use by another semsim run with other inputs" in seen["other_err"]
    assert "'runtest', pid" in seen["other_err"] and len(seen["other_err"].strip().splitlines()) == 1
    assert len(rows) == 2 and _strip_timing(seen["same"]) == _strip_timing(rows)
    monkeypatch.setattr(Runner, "point_rows", compute)
    assert len(read_csv(semsim.run(dict(TINY), output=out, fresh=True, progress=False))) == 2  # lock released


def test_a_run_never_reports_success_with_points_missing(tmp_path, monkeypatch):
    from semsim.errors import OutputError
    from semsim.runner import Runner

    compute = Runner.point_rows

    def and_remove_the_others(self, pt):  # as a --fresh of an unlocked run would
        for p in (self.out / ".points").glob("*.csv"):
            p.unlink()
        return compute(self, pt)

    monkeypatch.setattr(Runner, "point_rows", and_remove_the_others)
    with pytest.raises(OutputError, match="1 of 2 points have no results"):
        semsim.run(dict(TINY), output=tmp_path / "out", progress=False)


def test_every_registered_spec_resolves_to_plain_data():
    """A point's identity hashes each spec with its defaults; an object default (whose text holds a
    memory address) would change it in every process, and no point would ever be reused."""
    from semsim.registry import names, resolved

    for kind in ("channel", "codec", "dataset"):
        for name in names(kind):
            json.dumps(resolved(kind, name))  # TypeError for anything but plain data


def test_data_hash_names_content_not_place_and_is_cached(tmp_path, hash_cache, monkeypatch):
    import shutil

    import semsim.files
    from semsim.data import build_dataset, content_hash

    photos = _photos(tmp_path / "photos")
    first = content_hash(build_dataset({"name": "folder", "path": str(photos)}))
    copy = shutil.copytree(photos, tmp_path / "elsewhere" / "photos")  # another checkout or node
    assert content_hash(build_dataset({"name": "folder", "path": str(copy)})) == first

    def no_reading(path):
        raise AssertionError(f"{path} was read again")

    monkeypatch.setattr(semsim.files, "sha256", no_reading)
    assert content_hash(build_dataset({"name": "folder", "path": str(photos)})) == first  # from the cache
    assert (hash_cache / "file_sha256.json").is_file()


# --- shards (issue 15) --------------------------------------------------------------------------

SHARD_SCENARIO = {
    "name": "shardtest",
    "seed": 5,
    "data": {"name": "builtin", "limit": 2},
    "budget": {"cbr": "1/16"},
    "channels": ["awgn"],
    "snr_db": [3, 15],
    "methods": [{"name": "jpeg+ldpc", "mcs": ["qpsk-1/2", "16qam-1/2"]}, "jpeg+capacity"],
}


def _shard_yaml(tmp_path, out):
    path = tmp_path / "shard.yaml"
    path.write_text(yaml.safe_dump(dict(SHARD_SCENARIO, output=str(out))))
    return path


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    out = tmp_path_factory.mktemp("shards") / "single"
    t0 = time.perf_counter()
    rows = read_csv(semsim.run(dict(SHARD_SCENARIO), output=out, progress=False))
    return rows, time.perf_counter() - t0, out


def test_shard_points_are_deterministic_balanced_and_each_once():
    from semsim.runner import shard_points
    from semsim.scenario import Point

    points = [Point(i, f"p{i}", i) for i in range(10)]
    seconds = [5.0] * 4 + [1.0] * 6  # four costly (digital) points first in the canonical order
    shards = [shard_points(points, seconds, k, 3) for k in range(3)]
    assert sorted(p.index for s in shards for p in s) == list(range(10))
    assert shards == [shard_points(points, seconds, k, 3) for k in range(3)]
    assert all(s == sorted(s, key=lambda p: p.index) for s in shards)
    assert [sum(p.index < 4 for p in s) for s in shards] == [2, 1, 1]  # not every costly point on one shard
    loads = [sum(seconds[p.index] for p in s) for s in shards]
    assert max(loads) - min(loads) <= 5.0
    assert [len(shard_points(points, seconds, k, 12)) for k in range(12)] == [1] * 10 + [0, 0]


@pytest.mark.parametrize("bad", ["2/2", "-1/2", "1", "a/b", "1/0", "0/2/3"])
def test_bad_shard_is_one_line(tmp_path, capsys, bad):
    from semsim.cli import main

    path = _shard_yaml(tmp_path, tmp_path / "out")
    assert main(["run", str(path), f"--shard={bad}", "--quiet", "--no-plots"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--shard" in err and "0 <= K < N" in err
    assert not (tmp_path / "out").exists()


def test_fresh_with_shard_is_refused(tmp_path):
    with pytest.raises(semsim.errors.ConfigError, match="--fresh"):
        semsim.run(dict(SHARD_SCENARIO), output=tmp_path / "out", fresh=True, shard=(0, 2))


def test_two_shard_processes_then_assembly_equal_one_process(tmp_path, one_process):
    """Two shards at once in one folder (they share its lock), then an unsharded run assembles
    results.csv without computing any point; the CSV equals a single-process run's."""
    single, single_s, _ = one_process
    out = tmp_path / "out"
    path = _shard_yaml(tmp_path, out)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "semsim", "run", str(path), "--shard", f"{k}/2", "--quiet",
                               "--no-plots"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for k in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    sharded_s = time.perf_counter() - t0
    for p, (so, se) in zip(procs, results):
        assert p.returncode == 0, se[-3000:]
        assert "without --shard" in so
    assert not (out / "results.csv").exists() and not (out / "provenance.json").exists()
    parts = sorted((out / ".points").glob("*.csv"))
    assert len(parts) == len(semsim.load_scenario(dict(SHARD_SCENARIO)).points())
    stamps = [p.stat().st_mtime_ns for p in parts]
    rows = read_csv(semsim.run(path, progress=False))
    assert [p.stat().st_mtime_ns for p in parts] == stamps  # assembled, not recomputed
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["last_run"]["points_run"] == 0
    assert _strip_timing(rows) == _strip_timing(single)
    print(f"\n2 shard processes: {sharded_s:.1f} s; one process: {single_s:.1f} s")


def test_torchrun_two_gloo_ranks_equal_one_process(tmp_path, one_process):
    """`torchrun --nproc-per-node 2 -m semsim run --fresh`: rank 0 clears the folder, each rank
    computes its shard, rank 0 assembles."""
    import shutil

    single, single_s, single_out = one_process
    out = tmp_path / "out"
    shutil.copytree(single_out, out)
    (out / ".points" / "stale-1-0.csv").write_text("point\n")
    path = _shard_yaml(tmp_path, out)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           "-m", "semsim", "run", str(path), "--fresh", "--quiet", "--no-plots"],
                          capture_output=True, text=True, env=env, timeout=300)
    torchrun_s = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("wrote ") == 1  # rank 0 alone writes the outputs
    rows = read_csv(out / "results.csv")
    assert _strip_timing(rows) == _strip_timing(single)
    assert json.loads((out / "provenance.json").read_text())["last_run"]["points_run"] == 0
    assert not (out / ".points" / "stale-1-0.csv").exists()  # --fresh cleared the folder first
    print(f"\ntorchrun 2 ranks: {torchrun_s:.1f} s; one process: {single_s:.1f} s")
