"""One send-and-score path: a batch through a codec and a channel, scored by :data:`~semsim.metrics.METRICS`.

The runner's points, ``semsim grid``, ``semsim transmit`` and training's validation all send
images the same way: :func:`evaluate_batch` sends one batch of same-size images for one explicit
task (encode → channel → decode through ``codec.transmit``, every image's channel uses checked
against the budget) and scores the output with each metric of that task; :func:`evaluate_batches`
does it for a dataset's batches and adds the dataset-level metrics (mIoU over the confusion
matrix accumulated over every batch). Seeding is the caller's: seed once before the batches (the
runner: the point's seed; validation: one seed per task and SNR), so the noise each image sees
depends on the batch order alone.

Example::

    >>> import torch, semsim
    >>> from semsim.evaluate import evaluate_batch
    >>> codec = semsim.build_codec("jpeg+capacity", budget=semsim.Budget("cbr", 1 / 8))
    >>> r = evaluate_batch(codec, semsim.build_channel("awgn"), torch.rand(2, 3, 32, 32), None, 10.0,
    ...                    task="reconstruction")
    >>> sorted(r.scores), r.scores["psnr"].shape
    (['ms_ssim', 'psnr'], torch.Size([2]))
"""
from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

from .channels import snr_vector
from .codec import Task, Transmission, cbr
from .errors import ConfigError, choices
from .metrics import METRICS, ConfusionMatrix, LabelSpace

#: the image columns of a transmission results row, in the CSV's order (the metrics from :data:`METRICS`)
COLUMNS = ("scenario", "dataset", "task", "method", "weights", "train_channel", "channel", "snr_db", "budget", "mcs",
           "code_rate", "image", "height", "width", "channel_uses", "overhead", "cbr", *METRICS, "bits", "quality",
           "scale", "bler", "codewords_failed", "failed", "seed", "point", "seconds")


@contextmanager
def serving(codec, task: Task | str) -> Iterator[Any]:
    """``codec`` set to serve ``task`` for the ``with`` block: itself when it already does, else the
    codec of its ``task`` sweep axis (:meth:`~semsim.codec.Codec.with_axes`), else (a codec whose
    :attr:`~semsim.codec.Codec.tasks` hold several tasks, like ``semantic``) itself with its ``task``
    set for the block and restored after. :class:`ConfigError` for a task it does not serve."""
    task = Task(task)
    if codec.task is task:
        yield codec
    elif "task" in codec.axes:
        yield codec.with_axes(task=task.value)
    elif task in codec.tasks:
        old = codec.task
        codec.task = task
        try:
            yield codec
        finally:
            codec.task = old
    else:
        raise ConfigError(f"method {codec.display_name!r} serves {choices([t.value for t in codec.tasks])}, "
                          f"not {task.value}")


@dataclass
class BatchResult:
    """One batch sent and scored (see :func:`evaluate_batch`).

    :ivar task: the task the codec served.
    :ivar transmission: what ``codec.transmit`` returned (output, channel uses, overhead, bits, ...).
    :ivar scores: per-image metric name → ``[B]`` float64 on the CPU: the per-image metrics of
        :data:`~semsim.metrics.METRICS` for ``task`` (the others are NaN in :meth:`rows`).
    :ivar seconds: wall time of the transmission per image.
    """

    task: Task
    transmission: Transmission
    scores: dict[str, torch.Tensor] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def output(self) -> torch.Tensor:
        """``[B, 3, H, W]`` float in [0, 1] (reconstruction) or ``[B, C, H, W]`` logits."""
        return self.transmission.output

    def rows(self, ids: list[str]) -> list[dict[str, Any]]:
        """One row per image (``ids`` in batch order): ``image``, ``height``, ``width``, the channel
        uses, ``overhead``, ``cbr``, every metric of :data:`~semsim.metrics.METRICS` (NaN where it
        is not this task's, or dataset-level), ``bits``, ``failed``, ``seconds`` and the codec's
        extra per-image columns."""
        tr = self.transmission
        h, w = tr.output.shape[-2:]
        rows = []
        for i, image in enumerate(ids):
            row = {"image": image, "height": h, "width": w, "channel_uses": tr.channel_uses[i],
                   "overhead": tr.overhead[i], "cbr": cbr(tr.channel_uses[i], h, w),
                   **{name: float(self.scores[name][i]) if name in self.scores else math.nan for name in METRICS},
                   "bits": tr.bits[i], "failed": bool(tr.failed[i]), "seconds": self.seconds}
            row.update({k: v[i] for k, v in tr.extra.items()})
            rows.append(row)
        return rows


def evaluate_batch(codec, channel, images: torch.Tensor, labels: torch.Tensor | None,
                   snr_db: float | torch.Tensor, *, task: Task | str, confusion: ConfusionMatrix | None = None,
                   metrics: Iterable[str] | None = None, autocast: Callable = nullcontext) -> BatchResult:
    """Send ``images`` through ``codec`` (serving ``task``) over ``channel`` at ``snr_db`` and score them.

    :param images: ``[B, 3, H, W]`` float in [0, 1], one size, on the codec's device.
    :param labels: ``[B, H, W]`` int64 ground truth (segmentation), or None.
    :param snr_db: Es/N0 in dB: one number for the batch, or ``[B]``.
    :param task: the task to serve (:func:`serving`); the metrics are that task's.
    :param confusion: a segmentation's :class:`~semsim.metrics.ConfusionMatrix`, updated with this
        batch (for the dataset-level mIoU); left alone without labels.
    :param metrics: metric names to compute (default: all of :data:`~semsim.metrics.METRICS`).
    :param autocast: a context manager around the transmission (training's bf16 autocast).
    :raises BudgetError: an image used more channel uses than the codec's budget allows.
    """
    task = Task(task)
    b, _, h, w = images.shape
    snr = snr_vector(snr_db, b, images.device)
    with serving(codec, task) as c:
        t0 = time.perf_counter()
        with torch.no_grad(), autocast():
            tr = c.transmit(images, channel, snr)
        if images.is_cuda:
            torch.cuda.synchronize(images.device)
        seconds = (time.perf_counter() - t0) / b
        for n in tr.channel_uses:
            c.check_budget(n, h, w)
    wanted = set(METRICS if metrics is None else metrics)
    scores = {name: m.score(images, tr.output).cpu() for name, m in METRICS.items()
              if name in wanted and m.per_image and m.task == task.value}
    if confusion is not None and labels is not None and task is Task.SEGMENTATION:
        confusion.update(tr.output, labels)
    return BatchResult(task, tr, scores, seconds)


@dataclass
class Evaluation:
    """A dataset sent and scored (see :func:`evaluate_batches`).

    :ivar rows: one row per image (:meth:`BatchResult.rows`), the dataset-level metrics filled in.
    :ivar confusion: ``[C, C]`` int64 confusion counts of a segmentation (rows truth), else None.
    """

    rows: list[dict[str, Any]]
    confusion: torch.Tensor | None = None

    def mean(self, name: str) -> float:
        """Metric ``name`` over the dataset: a per-image metric's mean over the images (NaN if
        none), a dataset-level metric's value."""
        values = [r[name] for r in self.rows]
        if not values:
            return math.nan
        return sum(values) / len(values) if METRICS[name].per_image else values[0]


def evaluate_batches(codec, channel, batches: Iterable[tuple[torch.Tensor, torch.Tensor | None, list[str]]],
                     snr_db: float, *, task: Task | str, label_space: LabelSpace | None = None,
                     device: str | torch.device = "cpu", metrics: Iterable[str] | None = None,
                     autocast: Callable = nullcontext) -> Evaluation:
    """:func:`evaluate_batch` over ``batches`` (``(images, labels | None, ids)``, as
    :func:`semsim.data.stack` gives them), then the dataset-level metrics of the task over the
    confusion matrix of every batch (segmentation with ``label_space``).

    :param label_space: the labels' classes; default: the codec's ``num_classes``, no void index.
    """
    task = Task(task)
    wanted = list(METRICS if metrics is None else metrics)
    space = label_space or (LabelSpace(codec.num_classes) if getattr(codec, "num_classes", None) else None)
    cm = space.confusion() if task is Task.SEGMENTATION and space is not None else None
    rows = []
    for images, labels, ids in batches:
        r = evaluate_batch(codec, channel, images.to(device), labels, snr_db, task=task, confusion=cm,
                           metrics=wanted, autocast=autocast)
        rows += r.rows(ids)
    matrix = cm.matrix if cm is not None else None
    for name, m in METRICS.items():
        if not m.per_image and m.task == task.value and name in wanted and matrix is not None:
            value = m.score(matrix)
            for row in rows:
                row[name] = value
    return Evaluation(rows, matrix)


def scores_per_snr(codec, channel, batches: dict[Task, list[tuple[torch.Tensor, torch.Tensor | None]]],
                   snr_db: Iterable[float], seed: int, *, label_space: LabelSpace | None = None,
                   device: str | torch.device = "cpu", metrics: Iterable[str] | None = None,
                   autocast: Callable = nullcontext) -> list[dict[str, Any]]:
    """Scores of ``codec`` in eval mode for each of its tasks at each SNR (training's validation):
    one row per SNR, ``{"snr_db": ..., name: value}`` with each metric of :data:`METRICS`
    (per-image ones: the mean over the images; NaN for a task the codec does not serve). The noise
    of each (task, SNR) is seeded from ``seed``, so it is the same at every call.

    :param batches: task → ``[(images [B,3,H,W] float in [0, 1], labels [B,H,W] int64 | None), ...]``.
    :param label_space: the segmentation labels' classes (default: the codec's).
    """
    from .config import derive_seed, seed_everything

    wanted = list(METRICS if metrics is None else metrics)
    was_training = codec.training
    codec.eval()
    rows = []
    try:
        for snr in snr_db:
            row = {"snr_db": snr, **{name: math.nan for name in wanted}}
            for task in codec.tasks:
                seed_everything(derive_seed(seed, "validation", task.value, snr))
                triples = [(images, labels, [""] * images.shape[0]) for images, labels in batches[task]]
                ev = evaluate_batches(codec, channel, triples, snr, task=task, label_space=label_space,
                                      device=device, metrics=wanted, autocast=autocast)
                row.update({name: ev.mean(name) for name in wanted if METRICS[name].task == task.value})
            rows.append(row)
    finally:
        codec.train(was_training)
    return rows


__all__ = ["COLUMNS", "BatchResult", "Evaluation", "evaluate_batch", "evaluate_batches", "scores_per_snr",
           "serving"]
