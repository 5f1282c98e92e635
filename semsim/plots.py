"""Plots from results CSVs, as PNG and PDF.

- transmission results: metric-vs-SNR curves (one panel per channel, one figure per dataset and
  budget and metric) and, when a scenario sweeps several budgets, metric-vs-CBR curves; one line
  per method and MCS, mean over images with a shaded 95 % confidence interval; digital methods
  also get their best-MCS envelope (dashed). Only the metrics a dataset's rows have are drawn,
  with only the methods that have them: no mIoU for photos, no PSNR for segmentation scenes.
- Kodak PSNR-vs-SNR plots overlay published reference curves (``$SEMSIM_SHARED/anchors``) as
  dashed grey lines labelled "published", where channel and CBR match.
- BER results: log-scale BER and BLER against Es/N0 (or Eb/N0), with the closed forms for uncoded
  QAM over AWGN and QPSK over Rayleigh (dotted).
- training curves (``semsim train``): a method's loss (log scale) and validation PSNR / mIoU per SNR
  against the step (:func:`plot_training`), and the losses of several methods side by side
  (:func:`plot_training_losses`).
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from .metrics import METRICS, PLOT_LABELS
from .results import ENVELOPE_MCS, aggregate, is_ber, num, read_csv, with_envelope

METRIC_LABELS = PLOT_LABELS  # from the metric table (semsim.metrics.METRICS)
#: published reference curves overlaid on Kodak plots when the file exists
DEFAULT_ANCHORS = "$SEMSIM_SHARED/anchors/kodak_awgn_cbr1-16.csv"


def load_anchors(path: str | Path | None = None) -> list[dict[str, str]]:
    """Rows ``method, channel, cbr, snr_db, psnr_db, source`` of a published-curves CSV.

    ``None`` reads :data:`DEFAULT_ANCHORS` if it exists (else no anchors); a path you give must
    exist (:class:`~semsim.errors.DataError` otherwise).
    """
    from .data import expand_path
    from .errors import DataError

    file = expand_path(path or DEFAULT_ANCHORS)
    if not file.is_file():
        if path is None:
            return []
        raise DataError(f"anchors file {str(path)!r} not found")
    rows = read_csv(file)
    needed = {"method", "channel", "cbr", "snr_db", "psnr_db"}
    if rows and not needed <= set(rows[0]):
        raise DataError(f"anchors file {str(path)!r} lacks columns {sorted(needed - set(rows[0]))}")
    return rows


def anchor_curves(anchors: list[dict[str, str]], dataset: str, budget: str, channel: str
                  ) -> dict[str, list[tuple[float, float]]]:
    """Published PSNR curves (method → sorted ``(snr_db, psnr_db)``) that match a plot panel:
    the full-size Kodak set (no crop or limit), the same channel and the same CBR."""
    if not dataset.startswith("kodak") or "crop" in dataset or "limit" in dataset or not budget.startswith("cbr="):
        return {}
    from fractions import Fraction

    cbr = float(Fraction(budget.split("=", 1)[1]))
    curves: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in anchors:
        if r["channel"] == channel and abs(num(r["cbr"]) - cbr) < 1e-9:
            curves[r["method"]].append((num(r["snr_db"]), num(r["psnr_db"])))
    return {m: sorted(v) for m, v in curves.items()}


def pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, out: Path, stem: str) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.png", out / f"{stem}.pdf"]
    fig.savefig(paths[0], dpi=130, bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight")
    pyplot().close(fig)
    return paths


def slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text).strip("_")[:80]


MARKERS = "osv^DPX*<>"


def _styles(keys) -> dict[tuple[str, str], dict]:
    """One colour per method, one marker per MCS; envelopes dashed and thick, no marker."""
    import matplotlib

    colours = matplotlib.colormaps["tab10"].colors
    methods = sorted({m for m, _ in keys})
    mcs_values = sorted({c for _, c in keys if c and c != ENVELOPE_MCS})
    out = {}
    for method, mcs in keys:
        colour = colours[methods.index(method) % len(colours)]
        if mcs == ENVELOPE_MCS:
            out[(method, mcs)] = dict(color=colour, ls="--", lw=2.2, marker=None)
        else:
            marker = MARKERS[mcs_values.index(mcs) % len(MARKERS)] if mcs else "o"
            out[(method, mcs)] = dict(color=colour, ls="-", lw=1.2, marker=marker, ms=4)
    return out


def _line_label(method: str, mcs: str) -> str:
    if not mcs:
        return method
    return f"{method} (best MCS)" if mcs == ENVELOPE_MCS else f"{method} {mcs}"


def _measured(agg: dict[tuple, tuple[float, float, int]]) -> dict[tuple, tuple[float, float, int]]:
    """The groups that have the metric: a reconstruction dataset has no mIoU and a segmentation
    method no PSNR, and a line of NaN would leave an empty panel with a full legend."""
    return {k: v for k, v in agg.items() if v[2] > 0 and math.isfinite(v[0])}


def plot_results(csv_path: str | Path, out_dir: str | Path | None = None, x: str = "snr",
                 anchors: str | Path | None = None) -> list[Path]:
    """Draw every plot for one results CSV; returns the files written (PNG and PDF).

    :param x: for BER results, ``"snr"`` (Es/N0) or ``"ebno"`` (Eb/N0) on the x axis.
    :param anchors: a published-curves CSV (default: :data:`DEFAULT_ANCHORS` if present).
    """
    csv_path = Path(csv_path)
    rows = read_csv(csv_path)
    out = Path(out_dir) if out_dir is not None else csv_path.parent / "plots"
    if not rows:
        return []
    if is_ber(rows):
        return plot_ber(rows, out, x=x)
    paths = []
    metrics = [m for m in METRICS if any(math.isfinite(num(r.get(m))) for r in rows)]
    for metric in metrics:
        paths += plot_vs_snr(rows, out, metric, anchors=load_anchors(anchors) if metric == "psnr" else [])
        if len({r["budget"] for r in rows}) > 1:
            paths += plot_vs_cbr(rows, out, metric)
    return paths


def plot_vs_snr(rows, out: Path, metric: str, anchors: list[dict[str, str]] = ()) -> list[Path]:
    plt = pyplot()
    by = ("dataset", "budget", "channel", "method", "mcs", "snr_db")
    agg = with_envelope(_measured(aggregate(rows, by, metric)), by)
    paths = []
    for dataset, budget in sorted({k[:2] for k in agg}):
        channels = sorted({k[2] for k in agg if k[:2] == (dataset, budget)})
        fig, axes = plt.subplots(1, len(channels), figsize=(5.2 * len(channels), 4.2), squeeze=False)
        for ax, ch in zip(axes[0], channels):
            curves = defaultdict(list)
            for k, v in agg.items():
                if k[:3] == (dataset, budget, ch):
                    curves[(k[3], k[4])].append((float(k[5]), *v))
            styles = _styles(curves)
            for (method, mcs), pts in sorted(curves.items()):
                pts.sort()
                xs, ms, cis = (np.array([p[i] for p in pts]) for i in range(3))
                ax.plot(xs, ms, label=_line_label(method, mcs), **styles[(method, mcs)])
                if mcs != ENVELOPE_MCS:
                    ax.fill_between(xs, ms - cis, ms + cis, color=styles[(method, mcs)]["color"], alpha=0.07, lw=0)
            for i, (method, pts) in enumerate(sorted(anchor_curves(anchors, dataset, budget, ch).items())):
                label = method if "published" in method else f"{method} (published)"
                ax.plot(*zip(*pts), ls="--", lw=1.0, color=str(0.25 + 0.12 * (i % 5)),
                        marker=MARKERS[i % len(MARKERS)], ms=3, mfc="none", label=label)
            ax.set_title(f"{ch}", fontsize=10)
            ax.set_xlabel("SNR = Es/N0 (dB)")
            ax.set_ylabel(METRIC_LABELS.get(metric, metric))
            ax.grid(alpha=0.3)
        handles = {}  # every line of every panel (published curves exist for some channels only)
        for ax in axes[0]:
            for h, lab in zip(*ax.get_legend_handles_labels()):
                handles.setdefault(lab, h)
        axes[0][-1].legend(handles.values(), handles.keys(), fontsize=7, loc="center left",
                           bbox_to_anchor=(1.02, 0.5))
        fig.suptitle(f"{dataset}, {budget}", fontsize=11)
        paths += _save(fig, out, f"{metric}_vs_snr_{slug(dataset)}_{slug(budget)}")
    return paths


def plot_vs_cbr(rows, out: Path, metric: str) -> list[Path]:
    plt = pyplot()
    by = ("dataset", "channel", "snr_db", "method", "mcs", "budget")
    agg = with_envelope(_measured(aggregate(rows, by, metric)), by)
    cbr_of = defaultdict(list)
    for r in rows:
        cbr_of[r["budget"]].append(num(r["cbr"]))
    paths = []
    for dataset, channel in sorted({k[:2] for k in agg}):
        snrs = sorted({k[2] for k in agg if k[:2] == (dataset, channel)}, key=float)
        fig, axes = plt.subplots(1, len(snrs), figsize=(4.6 * len(snrs), 4.0), squeeze=False)
        for ax, snr in zip(axes[0], snrs):
            curves = defaultdict(list)
            for k, v in agg.items():
                if k[:3] == (dataset, channel, snr):
                    curves[(k[3], k[4])].append((float(np.nanmax(cbr_of[k[5]])), *v))
            styles = _styles(curves)
            for (method, mcs), pts in sorted(curves.items()):
                pts.sort()
                ax.plot([p[0] for p in pts], [p[1] for p in pts], label=_line_label(method, mcs),
                        **styles[(method, mcs)])
            ax.set_xscale("log", base=2)
            ax.set_title(f"SNR {float(snr):g} dB", fontsize=10)
            ax.set_xlabel("CBR (channel uses / 3HW)")
            ax.set_ylabel(METRIC_LABELS.get(metric, metric))
            ax.grid(alpha=0.3)
        axes[0][-1].legend(fontsize=7)
        fig.suptitle(f"{dataset}, {channel}", fontsize=11)
        paths += _save(fig, out, f"{metric}_vs_cbr_{slug(dataset)}_{slug(channel)}")
    return paths


def plot_ber(rows, out: Path, x: str = "snr") -> list[Path]:
    from .ber import ber_qam_awgn, ber_qpsk_rayleigh

    plt = pyplot()
    xcol, xlabel = ("ebno_db", "Eb/N0 (dB)") if x == "ebno" else ("snr_db", "Es/N0 (dB)")
    paths = []
    for channel in sorted({r["channel"] for r in rows}):
        sub = [r for r in rows if r["channel"] == channel]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        curves = defaultdict(list)
        for r in sub:
            curves[(r["modulation"], r["code_rate"])].append(r)
        for (mod, rate), pts in sorted(curves.items()):
            pts.sort(key=lambda r: num(r["snr_db"]))
            xs = [num(r[xcol]) for r in pts]
            for ax, col in zip(axes, ("ber", "bler")):
                ys = [num(r[col]) if num(r[col]) > 0 else np.nan for r in pts]
                line, = ax.semilogy(xs, ys, marker="o", ms=3, label=f"{mod} {rate}")
                if col == "ber" and rate == "uncoded" and (channel == "awgn" or (channel.startswith("rayleigh")
                                                                                and mod == "qpsk")):
                    snr = np.array([num(r["snr_db"]) for r in pts])
                    theory = ber_qam_awgn(mod, snr) if channel == "awgn" else ber_qpsk_rayleigh(snr)
                    ax.semilogy(xs, theory, ":", color=line.get_color(), label=f"{mod} theory")
        for ax, col in zip(axes, ("BER", "BLER")):
            ax.set_xlabel(xlabel)
            ax.set_ylabel(col)
            ax.grid(alpha=0.3, which="both")
            ax.set_title(f"{col}, {channel}", fontsize=10)
        axes[0].legend(fontsize=7)
        paths += _save(fig, out, f"ber_{slug(channel)}_{x}")
    return paths


# --- training curves -----------------------------------------------------------------------------

def plot_training(curve: list[dict[str, str]], validation: list[dict[str, str]], path: Path, title: str) -> Path:
    """One method's training: loss (log scale when positive) and validation PSNR / mIoU per SNR
    against the step, as a PNG written atomically to ``path``.

    :param curve: rows of ``curve.csv`` (``step``, ``loss``, ``loss_<task>``, ``psnr``, ``miou``).
    :param validation: rows of ``validation.csv`` (``step``, ``snr_db``, ``psnr``, ``miou``).
    """
    from matplotlib.figure import Figure

    has_seg = any(not math.isnan(num(r["miou"])) for r in validation + curve)
    has_rec = any(not math.isnan(num(r["psnr"])) for r in validation + curve)
    panels = 1 + has_rec + has_seg
    fig = Figure(figsize=(4.6 * panels, 3.6))
    axes = fig.subplots(1, panels, squeeze=False)[0]
    steps = [num(r["step"]) for r in curve]
    for col, name in (("loss", "total"), ("loss_reconstruction", "reconstruction"),
                      ("loss_segmentation", "segmentation")):
        ys = [num(r[col]) for r in curve]
        if any(not math.isnan(y) for y in ys) and (col == "loss" or has_rec + has_seg > 1):
            axes[0].plot(steps, ys, lw=0.8 if col == "loss" else 0.6, label=name)
    _log_if_positive(axes[0], [num(r["loss"]) for r in curve])
    axes[0].set(xlabel="step", ylabel="training loss", title=title)
    axes[0].legend(fontsize=7)
    axes[0].grid(alpha=0.3)
    snrs = sorted({num(r["snr_db"]) for r in validation})
    for ax, metric, ylabel, show in ((axes[1] if has_rec else None, "psnr", "validation PSNR (dB)", has_rec),
                                     (axes[-1] if has_seg else None, "miou", "validation mIoU", has_seg)):
        if not show:
            continue
        for snr in snrs:
            pts = [(num(r["step"]), num(r[metric])) for r in validation if num(r["snr_db"]) == snr]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=f"{snr:g} dB")
        ax.set(xlabel="step", ylabel=ylabel)
        ax.grid(alpha=0.3)
        if snrs:
            ax.legend(fontsize=7, title="SNR", title_fontsize=7)
    return _save_png(fig, path)


def plot_training_losses(curves: dict[str, list[dict[str, str]]], path: Path) -> Path:
    """The training loss of each method (name → rows of its ``curve.csv``), side by side on shared
    axes, as a PNG written atomically to ``path``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.2 * len(curves), 3.4))
    axes = fig.subplots(1, len(curves), sharex=True, sharey=True, squeeze=False)[0]
    every = []
    for ax, (name, rows) in zip(axes, curves.items()):
        ys = [num(r["loss"]) for r in rows]
        every += ys
        ax.plot([num(r["step"]) for r in rows], ys, lw=0.8)
        ax.set(title=name, xlabel="step")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("training loss")
    _log_if_positive(axes[0], every)
    return _save_png(fig, path)


def _log_if_positive(ax, values: list[float]) -> None:
    finite = [v for v in values if not math.isnan(v)]
    if finite and min(finite) > 0:
        ax.set_yscale("log")


def _save_png(fig, path: Path) -> Path:
    from .files import atomic_file

    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    return path
