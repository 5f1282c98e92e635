"""Validation scores of a codec being trained (``validation.csv``) and of weights to ship: the
codec in eval mode through ``codec.transmit`` at fixed SNRs, PSNR for reconstruction and the
dataset mIoU for segmentation, with the channel noise seeded per (task, SNR).

:func:`send_and_score` is the one place a validation batch is sent and scored.
"""
from __future__ import annotations

import math
from contextlib import nullcontext
from typing import Any

import torch

from .codec import Task
from .config import derive_seed, seed_everything
from .metrics import miou_from_confusion, psnr


@torch.no_grad()
def validation_scores(codec, channel, batches: dict[Task, list[tuple[torch.Tensor, torch.Tensor | None]]],
                      snr_db: list[float], seed: int, device: str, autocast=nullcontext,
                      seg_classes: tuple[int | None, int | None] = (None, None)) -> list[dict[str, Any]]:
    """Scores of ``codec`` through ``codec.transmit`` in eval mode: one row per SNR (dB) with the mean
    PSNR over the reconstruction images and the dataset mIoU over the segmentation ones (NaN for a
    task the codec does not serve). The noise of each (task, SNR) is seeded from ``seed``.

    :param batches: task → ``[(images [B,3,H,W] float in [0, 1], labels [B,H,W] int64 | None), …]``.
    :param seg_classes: ``(num_classes, ignore_index)`` of the labels (default: the codec's classes).
    """
    was_training = codec.training
    codec.eval()
    seg_classes = (seg_classes[0] or getattr(codec, "num_classes", None), seg_classes[1])
    rows = []
    for snr in snr_db:
        row = {"snr_db": snr, "psnr": math.nan, "miou": math.nan}
        for task in codec.tasks:
            seed_everything(derive_seed(seed, "validation", task.value, snr))
            cm, scores = 0, []
            for images, labels in batches[task]:
                images = images.to(device)
                snr_t = torch.full((images.shape[0],), snr, device=device)
                score = send_and_score(codec, task, images, labels, channel, snr_t, seg_classes, autocast)
                if task is Task.SEGMENTATION:
                    cm = cm + score
                else:
                    scores += score
            if task is Task.SEGMENTATION:
                row["miou"] = miou_from_confusion(cm)
            else:
                row["psnr"] = sum(scores) / len(scores)
        rows.append(row)
    codec.train(was_training)
    return rows


def send_and_score(codec, task: Task, images: torch.Tensor, labels: torch.Tensor | None, channel,
                   snr_db: torch.Tensor, seg_classes: tuple[int, int | None],
                   autocast=nullcontext) -> list[float] | torch.Tensor:
    """One batch sent for ``task`` and scored: the per-image PSNR (dB) of a reconstruction, or the
    ``[C, C]`` confusion counts (:func:`confusion`) of a segmentation against ``labels``.

    :param images: ``[B, 3, H, W]`` float in [0, 1] on the codec's device; ``labels``: ``[B, H, W]`` int64.
    :param snr_db: ``[B]`` float; ``seg_classes``: ``(num_classes, ignore_index)``.
    :param autocast: the precision context of the codec's pass (scores are computed in fp32).
    """
    with autocast():
        out = task_output(codec, task, images, labels, channel, snr_db)
    if task is Task.SEGMENTATION:
        return confusion(out, labels, *seg_classes)
    return psnr(images, out.float()).cpu().tolist()


def task_output(codec, task: Task, images, labels, channel, snr_db) -> torch.Tensor:
    """The output of ``codec`` for ``task`` through ``codec.transmit``.

    A multi-task codec is switched to ``task`` through a ``task`` sweep axis (``with_axes``) or,
    like the ``semantic`` codec, its ``task`` attribute (set for the call, then restored); one that
    offers neither is scored on its ``training_step`` output (eval mode, no gradients).
    """
    if codec.task is task:
        return codec.transmit(images, channel, snr_db).output
    if "task" in codec.axes:
        return codec.with_axes(task=task.value).transmit(images, channel, snr_db).output
    if "task" in vars(codec):
        old = codec.task
        codec.task = task
        try:
            return codec.transmit(images, channel, snr_db).output
        finally:
            codec.task = old
    labels = None if labels is None else labels.to(images.device)
    return codec.training_step(task, images, labels, channel, snr_db)[1]


def confusion(logits: torch.Tensor, labels: torch.Tensor, num_classes: int, ignore_index: int | None) -> torch.Tensor:
    """``[C, C]`` confusion counts (rows truth) of ``[B, C, H, W]`` logits against ``[B, H, W]`` labels.

    The functional form of :class:`semsim.metrics.ConfusionMatrix`: the metric object would gather
    across processes on its own under ``torchrun`` (and hang when only rank 0 validates), while
    here ranks are reduced explicitly.
    """
    from torchmetrics.functional.classification import multiclass_confusion_matrix

    return multiclass_confusion_matrix(logits.argmax(1).cpu(), labels.cpu(), num_classes, ignore_index=ignore_index)
