"""Metrics, one function each, used by every method: PSNR, MS-SSIM, mIoU, BER/BLER.

Images are ``[B, 3, H, W]`` float tensors in [0, 1]; labels are ``[B, H, W]`` int64 with a void
index that is ignored.

:data:`METRICS` is the table of the image metrics every results row carries: the runner's CSV
columns, the plots' axis labels and the report's tables read it, and
:func:`semsim.evaluate.evaluate_batch` computes it. Adding a metric is one entry here (and its
function): a per-image metric is ``score(reference, estimate) -> [B] float64``; a dataset-level
one (like mIoU) is ``score(confusion [C, C]) -> float``, computed once per point from the
confusion matrix accumulated over the batches.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

#: MS-SSIM with the default 5 scales and an 11-pixel Gaussian window needs the smaller image side
#: to exceed (11 - 1) * 2**4 = 160 pixels; below that :func:`ms_ssim` returns NaN.
MS_SSIM_MIN_SIDE = 161


def psnr(reference: torch.Tensor, estimate: torch.Tensor, max_value: float = 1.0) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB (eq. 2): ``10 log10(MAX^2 / MSE)``.

    :input reference, estimate: ``[B, C, H, W]`` float in [0, ``max_value``].
    :output: ``[B]`` float64 dB; ``inf`` for identical images.
    """
    mse = (reference.double() - estimate.double().clamp(0, max_value)).square().flatten(1).mean(1)
    return 10.0 * torch.log10(max_value**2 / mse)


def ms_ssim(reference: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """Multi-scale SSIM per image (pytorch-msssim, data range 1, default 5 scales).

    :output: ``[B]`` float64; NaN for images whose smaller side is below
        :data:`MS_SSIM_MIN_SIDE` (too small for the default window at the coarsest scale).
    """
    from pytorch_msssim import ms_ssim as _ms_ssim

    b, _, h, w = reference.shape
    if min(h, w) < MS_SSIM_MIN_SIDE:
        return torch.full((b,), math.nan, dtype=torch.float64)
    val = _ms_ssim(reference.float(), estimate.float().clamp(0, 1), data_range=1.0, size_average=False)
    return val.double().cpu()


class ConfusionMatrix:
    """Accumulates a ``[C, C]`` confusion matrix over a whole dataset (rows: truth, cols: prediction).

    mIoU is computed once from the accumulated matrix (the standard dataset-level mIoU), never as a
    mean of per-image IoUs.
    """

    def __init__(self, num_classes: int, ignore_index: int | None):
        from torchmetrics.classification import MulticlassConfusionMatrix

        self.num_classes = num_classes
        self._cm = MulticlassConfusionMatrix(num_classes=num_classes, ignore_index=ignore_index,
                                             sync_on_compute=False)

    def update(self, logits_or_pred: torch.Tensor, target: torch.Tensor) -> None:
        """``[B, C, H, W]`` logits (or ``[B, H, W]`` predicted classes) and ``[B, H, W]`` labels."""
        pred = logits_or_pred.argmax(1) if logits_or_pred.dim() == 4 else logits_or_pred
        self._cm.update(pred.cpu(), target.cpu())

    @property
    def matrix(self) -> torch.Tensor:
        return self._cm.compute()

    def miou(self) -> float:
        """Mean IoU over the classes present in the truth or the prediction (eq. 3)."""
        return miou_from_confusion(self.matrix)


def miou_from_confusion(cm: torch.Tensor) -> float:
    """Mean over classes of ``TP / (TP + FP + FN)``, skipping classes absent from truth and prediction."""
    cm = cm.double()
    tp = cm.diag()
    union = cm.sum(0) + cm.sum(1) - tp
    valid = union > 0
    if not valid.any():
        return math.nan
    return float((tp[valid] / union[valid]).mean())


def bit_errors(bits: torch.Tensor, bits_hat: torch.Tensor) -> tuple[int, int]:
    """Number of bit errors and of bits: ``(errors, total)``."""
    return int((bits != bits_hat).sum()), int(bits.numel())


def block_errors(bits: torch.Tensor, bits_hat: torch.Tensor) -> tuple[int, int]:
    """Blocks (rows of the last axis) with at least one bit error: ``(errors, total)``."""
    wrong = (bits != bits_hat).reshape(-1, bits.shape[-1]).any(-1)
    return int(wrong.sum()), int(wrong.numel())


class LabelSpace(NamedTuple):
    """The classes of a segmentation dataset: ``num_classes`` and the ``ignore_index`` of its void
    pixels (``None``: none). Each ground-truth value outside ``[0, num_classes)`` other than
    ``ignore_index`` is an error for :class:`ConfusionMatrix`."""

    num_classes: int
    ignore_index: int | None = None

    def confusion(self) -> "ConfusionMatrix":
        """An empty :class:`ConfusionMatrix` over this label space."""
        return ConfusionMatrix(self.num_classes, self.ignore_index)


@dataclass(frozen=True)
class Metric:
    """One entry of :data:`METRICS`.

    :ivar name: the CSV column of a results row (also the key of :data:`METRICS`).
    :ivar axis_label: the plots' axis label (with its unit).
    :ivar task: the task whose output it scores (``"reconstruction"`` or ``"segmentation"``); a row
        of the other task holds NaN.
    :ivar per_image: ``True``: ``score(reference [B,3,H,W], estimate [B,C,H,W]) -> [B] float64``
        per image; ``False``: dataset-level, ``score(confusion [C, C] int64) -> float``, one value
        per point over all its images (the standard mIoU, never a mean of per-image values).
    """

    name: str
    axis_label: str
    task: str
    per_image: bool
    score: Callable


#: name → metric, in the CSV's column order
METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("psnr", "PSNR (dB)", "reconstruction", True, psnr),
    Metric("ms_ssim", "MS-SSIM", "reconstruction", True, ms_ssim),
    Metric("miou", "mIoU", "segmentation", False, miou_from_confusion),
)}


def headline_metrics() -> list[str]:
    """The first metric of each task in :data:`METRICS` (``["psnr", "miou"]``): the one a summary
    table shows by default."""
    first: dict[str, str] = {}
    for name, m in METRICS.items():
        first.setdefault(m.task, name)
    return list(first.values())


#: metric name → plot axis label
PLOT_LABELS = {name: m.axis_label for name, m in METRICS.items()}
