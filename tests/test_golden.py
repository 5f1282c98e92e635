"""The same fixed-seed scenario gives the same CSV before and after a refactor (issue 13).

``tests/data/golden.yaml`` runs every codec, both tasks and every kind of channel (AWGN, flat
Rayleigh and Rician, TDL and CDL over OFDM) with untrained weights seeded from the scenario, so
re-shipped weights do not move it. Text columns must match exactly; numbers to 1e-6 relative
(a different CPU's vector units may round a convolution differently in the last bits). The
timing column is left out.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

from conftest import cells_close
from semsim.runner import run
from semsim.scenario import load_scenario

DATA = Path(__file__).parent / "data"
SKIP = {"seconds"}


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [{k: v for k, v in r.items() if k not in SKIP} for r in csv.DictReader(f)]


def _same(a: str, b: str) -> bool:
    return cells_close(a, b, rel=1e-6, abs_tol=1e-9)


def test_golden_csv(tmp_path):
    sc = load_scenario(DATA / "golden.yaml")
    got = _rows(run(sc, output=tmp_path / "out", progress=False))
    golden = DATA / "golden.csv"
    if os.environ.get("SEMSIM_REGENERATE_GOLDEN"):
        with open(golden, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(got[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(got)
        pytest.skip("regenerated tests/data/golden.csv")
    want = _rows(golden)
    assert len(got) == len(want) == 55
    assert list(got[0]) == list(want[0]), "the CSV's columns changed"
    for g, w in zip(got, want):
        bad = {k: (g[k], w[k]) for k in w if not _same(g[k], w[k])}
        assert not bad, f"{w['method']} over {w['channel']} ({w['task']}): {bad}"
