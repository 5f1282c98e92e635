"""Aggregation for tables and plots: grouping, 95 % CI, best-MCS envelope."""
import math

import pytest
from scipy import stats

from semsim.results import aggregate, mean_ci, summary_table, with_envelope


def _rows():
    rows = []
    for mcs, base in (("qpsk-1/2", 25.0), ("16qam-1/2", 28.0)):
        for snr, ok in (("2", mcs == "qpsk-1/2"), ("10.000000", True)):
            for i, jitter in enumerate((-1.0, 0.0, 1.0)):
                rows.append({"dataset": "d", "channel": "awgn", "budget": "cbr=1/16", "method": "JPEG+LDPC",
                             "mcs": mcs, "snr_db": snr, "image": str(i),
                             "psnr": str(base + jitter if ok else 12.0)})
    return rows


def test_mean_ci_is_the_t_interval():
    v = [1.0, 2.0, 4.0, 7.0]
    m, half, n = mean_ci(v + [math.nan])
    lo, hi = stats.t.interval(0.95, len(v) - 1, loc=sum(v) / 4, scale=stats.sem(v))
    assert (m, n) == (3.5, 4) and half == pytest.approx((hi - lo) / 2)


def test_snr_cells_group_as_numbers_and_envelope_takes_best_mcs():
    by = ("method", "mcs", "snr_db")
    agg = with_envelope(aggregate(_rows() + [dict(_rows()[0], snr_db="2.0")], by, "psnr"), by)
    assert agg[("JPEG+LDPC", "qpsk-1/2", "2")][2] == 4  # "2" and "2.0" are one SNR
    assert agg[("JPEG+LDPC", "best", "2")][0] == pytest.approx(agg[("JPEG+LDPC", "qpsk-1/2", "2")][0])
    assert agg[("JPEG+LDPC", "best", "10")][0] == pytest.approx(28.0)
    table = summary_table(_rows())
    assert "| best |" in table and "28.00" in table and "10 dB" in table


def test_published_curves_overlay_matching_kodak_panels(shared, tmp_path, monkeypatch):
    import csv

    from semsim import plots
    from semsim.errors import DataError

    anchors = plots.load_anchors(shared / "anchors" / "kodak_awgn_cbr1-16.csv")
    assert anchors and all("published" in r["method"] for r in anchors)
    curves = plots.anchor_curves(anchors, "kodak", "cbr=1/16", "awgn")
    assert "WITT (published)" in curves and curves["WITT (published)"][0] == (1.0, 29.65)
    assert plots.anchor_curves(anchors, "kodak", "cbr=1/8", "awgn") == {}        # another CBR
    assert plots.anchor_curves(anchors, "kodak", "cbr=1/16", "rayleigh") == {}   # another channel
    assert plots.anchor_curves(anchors, "kodak(crop=224)", "cbr=1/16", "awgn") == {}  # not full size
    with pytest.raises(DataError, match="not found"):
        plots.load_anchors(tmp_path / "missing.csv")

    path = tmp_path / "results.csv"
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["dataset", "task", "method", "channel", "snr_db", "budget", "mcs", "psnr"])
        w.writeheader()
        for snr, p in ((1, 25.0), (13, 30.0)):
            w.writerow(dict(dataset="kodak", task="reconstruction", method="GenSC", channel="awgn", snr_db=snr,
                            budget="cbr=1/16", mcs="", psnr=p))
    labels = []
    real_save = plots._save

    def spy(fig, out, stem):
        labels.extend(line.get_label() for ax in fig.axes for line in ax.get_lines())
        return real_save(fig, out, stem)

    monkeypatch.setattr(plots, "_save", spy)
    files = plots.plot_results(path, tmp_path / "plots", anchors=shared / "anchors" / "kodak_awgn_cbr1-16.csv")
    assert files and "GenSC" in labels and "WITT (published)" in labels


def test_no_plot_without_a_line(tmp_path, monkeypatch):
    """Photos have PSNR and MS-SSIM, segmentation scenes mIoU: each figure shows only the metric
    its dataset has, and each panel and legend only the methods that have it."""
    import csv

    from semsim import plots

    path = tmp_path / "results.csv"
    cols = ["dataset", "task", "method", "channel", "snr_db", "budget", "cbr", "mcs", "psnr", "ms_ssim", "miou"]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for budget, cbr in (("cbr=1/16", 1 / 16), ("cbr=1/8", 1 / 8)):
            for snr in (2, 8):
                for method, mcs in (("GenSC", ""), ("JPEG+LDPC", "16qam-1/2")):
                    w.writerow(dict(dataset="builtin", task="reconstruction", method=method, channel="awgn",
                                    snr_db=snr, budget=budget, cbr=cbr, mcs=mcs, psnr=20 + snr, ms_ssim=0.9,
                                    miou=""))
                for method, mcs in (("GenSC segmentation", ""), ("JPEG+LDPC+FCN", "16qam-1/2")):
                    w.writerow(dict(dataset="procedural", task="segmentation", method=method, channel="awgn",
                                    snr_db=snr, budget=budget, cbr=cbr, mcs=mcs, psnr="", ms_ssim="",
                                    miou=0.5))
    figures = {}

    def spy(fig, out, stem):
        import numpy as np

        figures[stem] = [[line.get_label() for line in ax.get_lines() if np.isfinite(line.get_ydata()).any()]
                         for ax in fig.axes if ax.get_lines() or ax.get_legend_handles_labels()[1]]
        figures[stem + " legend"] = [t.get_text() for ax in fig.axes if ax.get_legend()
                                     for t in ax.get_legend().get_texts()]
        plots.pyplot().close(fig)  # no files: drawing them is slow and not what is tested
        return []

    monkeypatch.setattr(plots, "_save", spy)
    plots.plot_results(path, tmp_path / "plots", anchors=None)
    stems = {s for s in figures if not s.endswith(" legend")}
    assert stems == {"psnr_vs_snr_builtin_cbr_1_16", "psnr_vs_snr_builtin_cbr_1_8",
                     "ms_ssim_vs_snr_builtin_cbr_1_16", "ms_ssim_vs_snr_builtin_cbr_1_8",
                     "miou_vs_snr_procedural_cbr_1_16", "miou_vs_snr_procedural_cbr_1_8",
                     "psnr_vs_cbr_builtin_awgn", "ms_ssim_vs_cbr_builtin_awgn", "miou_vs_cbr_procedural_awgn"}
    for stem in stems:
        assert figures[stem] and all(panel for panel in figures[stem]), stem  # a line in every panel
        legend = set(figures[stem + " legend"])
        drawn = {label for panel in figures[stem] for label in panel}
        assert legend and legend <= drawn, (stem, legend, drawn)
        wanted = "FCN" if "procedural" in stem else "JPEG+LDPC 16qam"
        assert any(wanted in label for label in legend), (stem, legend)
        unwanted = ("GenSC segmentation", "FCN") if "builtin" in stem else ("GenSC", "JPEG+LDPC 16qam")
        assert not any(label in unwanted or label.startswith(unwanted[1]) for label in legend), (stem, legend)
