"""The runner: tidy CSV with provenance, budget cap, per-point reruns, resume after SIGKILL, plots."""
import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

import semsim
from semsim.codec import Budget
from semsim.results import read_csv
from semsim.run import COLUMNS, TIMING_COLUMNS

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
    good = [float(r["psnr"]) for r in ldpc if r["channel"] == "awgn" and r["snr_db"] == "15.000000"]
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


def test_other_scenario_in_same_output_is_refused(finished, capsys):
    out, _ = finished
    with pytest.raises(semsim.errors.ConfigError, match="different scenario"):
        semsim.run(dict(SCENARIO, seed=12), output=out, progress=False)


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
