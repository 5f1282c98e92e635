"""One optimisation step of ``semsim train``, in parts: the state of a method being trained
(:class:`MethodRun`), the learning rate of step ``k``, the module DDP wraps (one ``training_step``
per task), backpropagation with per-task gradient norms, and the row a logged step writes to
``curve.csv`` (with the progress bar's summary of it).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .codec import Task
from .distributed import Dist
from .metrics import LabelSpace, miou_from_confusion, psnr

CURVE_COLUMNS = ("step", "loss_reconstruction", "loss_segmentation", "loss", "psnr", "miou", "lr", "grad_norm",
                 "grad_reconstruction", "grad_segmentation", "wall_seconds")


@dataclass
class MethodRun:
    """One method being trained: its codec, channel, optimiser and the module DDP wraps, and
    where the run stands (``start``: the step resumed from; ``wall0``: its wall seconds then)."""

    m: int
    name: str
    folder: Path
    settings: dict[str, Any]
    codec: Any
    channel: Any
    optimizer: torch.optim.Optimizer
    params: list[torch.nn.Parameter]
    model: torch.nn.Module
    shared: list[torch.nn.Parameter]
    opt_cfg: dict[str, Any]
    start: int = 0
    wall0: float = 0.0
    last_validation: int = -1
    t_chunk: float = 0.0

    def wall(self) -> float:
        """Wall seconds of training so far, over every chunk of a resumed run."""
        return self.wall0 + time.perf_counter() - self.t_chunk



class TrainStep(torch.nn.Module):
    """``forward`` = one ``training_step`` per task; the module DDP wraps (it hooks ``forward``).

    :param codec: a trainable :class:`~semsim.codec.Codec`.
    :param loss_weights: task value → weight of its loss in the total (default 1 each).
    """

    def __init__(self, codec, loss_weights: dict[str, float] | None = None):
        super().__init__()
        self.codec = codec
        self.loss_weights = {Task(t): float(w) for t, w in (loss_weights or {}).items()}

    def forward(self, batches: dict[Task, tuple], channel):
        """Returns the weighted total ``Σ w_task · loss_task``, the unweighted losses, the weighted
        ones and the outputs (for logging).

        :param batches: task → ``(images [B,3,c,c] float, labels [B,c,c] int64 | None, snr_db [B] float)``.
        """
        losses, weighted, outputs = {}, {}, {}
        for task, (images, labels, snr_db) in batches.items():
            losses[task], outputs[task] = self.codec.training_step(task, images, labels, channel, snr_db)
            weighted[task] = self.loss_weights.get(task, 1.0) * losses[task]
        return sum(weighted.values()), losses, weighted, outputs


def learning_rate(opt: dict[str, Any], k: int, steps: int) -> float:
    """The learning rate of step ``k`` (1-based) of ``steps``: linear warm-up over ``warmup_steps``,
    then constant or a cosine decay to ``final_lr · lr`` at the last step."""
    lr = opt["lr"]
    warm = opt["warmup_steps"]
    if warm and k < warm:
        return lr * k / warm
    if opt.get("schedule", "constant") == "cosine" and steps > warm:
        progress = min(1.0, max(0.0, (k - warm) / (steps - warm)))
        final = opt.get("final_lr", 1.0)
        return lr * (final + (1 - final) * 0.5 * (1 + math.cos(math.pi * progress)))
    return lr


def backward_per_task(weighted: dict[Task, torch.Tensor], shared: list[torch.nn.Parameter]) -> dict[Task, float]:
    """Backpropagate each task's weighted loss in turn (their sum, as one backward would) and
    return the norm of each task's gradient on the ``shared`` parameters."""
    norms, before = {}, None
    tasks = list(weighted)
    for i, task in enumerate(tasks):
        weighted[task].backward(retain_graph=i < len(tasks) - 1)
        now = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).detach().float().flatten()
                         for p in shared])
        norms[task] = float((now if before is None else now - before).norm())
        before = now
    return norms


def curve_row(k: int, total: torch.Tensor, losses: dict[Task, torch.Tensor], outputs: dict[Task, torch.Tensor],
              batches: dict[Task, tuple], seg_classes: tuple[int, int | None], dist: Dist,
              device: str) -> dict[str, Any]:
    """The ``curve.csv`` row of step ``k`` (without lr, gradient norms and wall time): the losses
    and the training PSNR averaged over the ranks, the mIoU of every rank's segmentation batch."""
    nan = math.nan
    values = [float(total.detach()), *(float(losses[t].detach()) if t in losses else nan for t in Task)]
    if Task.RECONSTRUCTION in outputs:
        images = batches[Task.RECONSTRUCTION][0]
        values.append(float(psnr(images, outputs[Task.RECONSTRUCTION].detach().float()).mean()))
    else:
        values.append(nan)
    values = dist.mean(values, device)
    miou = nan
    if Task.SEGMENTATION in outputs:
        cm = LabelSpace(*seg_classes).confusion()
        cm.update(outputs[Task.SEGMENTATION].detach(), batches[Task.SEGMENTATION][1])
        miou = miou_from_confusion(dist.sum_(cm.matrix.to(device)).cpu())
    loss, loss_rec, loss_seg, train_psnr = values
    return {"step": k, "loss_reconstruction": loss_rec, "loss_segmentation": loss_seg, "loss": loss,
            "psnr": train_psnr, "miou": miou}


def progress_postfix(row: dict[str, Any], skipped: int) -> dict[str, Any]:
    """The progress bar's numbers: loss, training PSNR / mIoU where defined, skipped steps."""
    post = {"loss": f"{row['loss']:.4g}"}
    if not math.isnan(row["psnr"]):
        post["psnr"] = f"{row['psnr']:.2f}"
    if not math.isnan(row["miou"]):
        post["miou"] = f"{row['miou']:.3f}"
    if skipped:
        post["skipped"] = skipped
    return post
