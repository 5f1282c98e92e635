"""The one send-and-score path (semsim.evaluate) and the metrics table it reads (semsim.metrics.METRICS)."""
from __future__ import annotations

import doctest
import math
import sys

import pytest
import torch

import semsim
from semsim import metrics
from semsim.codec import Task
from semsim.config import seed_everything
from semsim.errors import ConfigError
from semsim.channels import snr_vector
from semsim.evaluate import COLUMNS, evaluate_batch, evaluate_batches, scores_per_snr, serving
from semsim.metrics import METRICS, ConfusionMatrix, LabelSpace, Metric


def _scenes(n: int = 2, h: int = 48, w: int = 64):
    ds = semsim.build_dataset({"name": "procedural", "num": n, "height": h, "width": w})
    return torch.stack([s.image for s in ds]), torch.stack([s.label for s in ds]), ds


def test_docstring_example_runs():
    import semsim.evaluate  # noqa: F401

    result = doctest.testmod(sys.modules["semsim.evaluate"])
    assert result.attempted > 0 and result.failed == 0


def test_metrics_table_gives_the_csv_columns_and_plot_labels():
    assert [c for c in COLUMNS if c in METRICS] == list(METRICS) == ["psnr", "ms_ssim", "miou"]
    assert metrics.PLOT_LABELS["psnr"] == "PSNR (dB)" and not METRICS["miou"].per_image


def test_a_metric_added_to_the_table_reaches_the_rows(monkeypatch):
    """Adding a metric is one entry of METRICS: the scores and the rows carry it."""
    table = dict(METRICS, mae=Metric("mae", "MAE", "reconstruction", True,
                                     lambda ref, est: (ref.double() - est.double()).abs().flatten(1).mean(1)))
    monkeypatch.setattr("semsim.evaluate.METRICS", table)
    images, _, _ = _scenes()
    codec = semsim.build_codec("jpeg+capacity", budget=semsim.Budget("cbr", 1 / 4))
    r = evaluate_batch(codec, semsim.build_channel("awgn"), images, None, 20.0, task="reconstruction")
    rows = r.rows(["a", "b"])
    assert set(r.scores) == {"psnr", "ms_ssim", "mae"} and rows[0]["mae"] >= 0
    assert math.isnan(rows[0]["miou"]) and math.isnan(rows[0]["ms_ssim"])  # 48 px: below MS-SSIM's minimum
    assert rows[0]["psnr"] == float(metrics.psnr(images, r.output)[0])


def test_dataset_miou_over_every_batch():
    images, labels, ds = _scenes(3)
    codec = semsim.build_codec({"name": "deeplab-jscc", "num_classes": ds.num_classes},
                               budget=semsim.Budget("cbr", 1 / 4))
    channel, space = semsim.build_channel("awgn"), LabelSpace(ds.num_classes, ds.ignore_index)
    seed_everything(0)
    batches = [(images[:2], labels[:2], ["0", "1"]), (images[2:], labels[2:], ["2"])]
    ev = evaluate_batches(codec.eval(), channel, batches, 10.0, task="segmentation", label_space=space)
    seed_everything(0)
    cm = ConfusionMatrix(*space)
    for sl in (slice(0, 2), slice(2, 3)):
        with torch.no_grad():
            cm.update(codec.transmit(images[sl], channel, snr_vector(10.0, sl.stop - sl.start)).output, labels[sl])
    assert [r["image"] for r in ev.rows] == ["0", "1", "2"]
    assert all(r["miou"] == cm.miou() == ev.mean("miou") for r in ev.rows)
    assert all(math.isnan(r["psnr"]) for r in ev.rows) and torch.equal(ev.confusion, cm.matrix)


def test_serving_switches_a_multi_task_codec_and_restores_it():
    budget = semsim.Budget("cbr", 1 / 16)
    codec = semsim.build_codec({"name": "semantic", "preset": "small", "meta": True}, budget=budget)
    assert codec.task is Task.RECONSTRUCTION
    with serving(codec, "segmentation") as c:
        assert c.task is Task.SEGMENTATION
    assert codec.task is Task.RECONSTRUCTION
    single = semsim.build_codec("jpeg+capacity", budget=budget)
    with pytest.raises(ConfigError, match="not segmentation"), serving(single, Task.SEGMENTATION):
        pass


