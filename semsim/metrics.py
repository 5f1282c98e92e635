"""Metrics, one function each, used by every method: PSNR, MS-SSIM, mIoU, BER/BLER.

Images are ``[B, 3, H, W]`` float tensors in [0, 1]; labels are ``[B, H, W]`` int64 with a void
index that is ignored.
"""
from __future__ import annotations

import math

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
