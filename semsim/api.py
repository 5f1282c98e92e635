"""The public Python API (re-exported by ``import semsim``); the CLI is a thin layer over it.

Example::

    import semsim
    sc = semsim.load_scenario("scenarios/quickstart.yaml")
    csv_path = semsim.run(sc, output="results/qs")
    semsim.plot(csv_path)
    weights = semsim.train("scenarios/train_semantic_small.yaml")   # method label → weights file
    ch = semsim.build_channel("awgn")
    codec = semsim.build_codec({"name": "jpeg+ldpc", "mcs": "16qam-1/2"}, budget=semsim.Budget("cbr", 1 / 16))
    r = semsim.transmit("photo.png", "label every pixel", channel="rayleigh", snr_db=5.0, out="out.png")
    semsim.grid("scenarios/fig6.yaml")          # a visual grid: every method on every image
    semsim.report()                             # docs/results.md from the figure scenarios' results
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .channels import build_channel
from .codec import Budget
from .registry import build, names
from .runner import run
from .scenario import Scenario, TrainScenario, load_scenario
from .train import train
from .transmit import TransmitResult, resolve_task, transmit
from .report import report
from .visual import grid


def build_codec(spec: str | dict[str, Any], budget: Budget) -> Any:
    """Build a registered codec (transmission method) for a channel-use budget."""
    return build("codec", spec, budget=budget)


def build_dataset(spec: str | dict[str, Any]) -> Any:
    """Build a registered dataset (``builtin``, ``kodak``, ``folder``, ``voc``, ``camvid``, …)."""
    return build("dataset", spec)


def plot(csv_path: str | Path, out_dir: str | Path | None = None, x: str = "snr",
         anchors: str | Path | None = None) -> list[Path]:
    """Draw PNG and PDF plots for a results CSV; returns the files written. Kodak PSNR plots
    overlay the published curves of ``anchors`` (default: ``$SEMSIM_SHARED/anchors``, if present)."""
    from .plots import plot_results

    return plot_results(csv_path, out_dir, x=x, anchors=anchors)


def estimate_seconds(sc: Scenario) -> float:
    """A rough run-time estimate on a 2-core CPU: a sweep's :meth:`~semsim.scenario.SweepScenario.point_seconds`
    summed (from each codec's ``cost_s_per_mpixel``), a training scenario's from its steps."""
    if isinstance(sc, TrainScenario):
        from .train import estimate_seconds as train_seconds

        return train_seconds(sc)
    return sum(sc.point_seconds())


__all__ = ["Budget", "Scenario", "TransmitResult", "build", "build_channel", "build_codec", "build_dataset",
           "estimate_seconds", "grid", "load_scenario", "names", "plot", "report", "resolve_task", "run", "train",
           "transmit"]
