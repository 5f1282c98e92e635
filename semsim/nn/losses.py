"""Training losses shared by semsim's learned codecs: the loss stays outside the model, whose
``forward`` returns a :class:`~semsim.codec.CodecOutput` (``prediction`` and ``target``)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Mean cross-entropy (paper eq. 6) over non-void pixels; void is any label outside
    ``[0, num_classes)`` (CamVid 11, VOC 255). A batch with no valid pixel gives 0 (not NaN).

    :param logits: ``[B, K, H, W]`` float; ``labels``: ``[B, H, W]`` integer.
    """
    target = labels.long().to(logits.device)
    valid = (target >= 0) & (target < num_classes)
    target = torch.where(valid, target, torch.full_like(target, -100))
    total = F.cross_entropy(logits.float(), target, ignore_index=-100, reduction="sum")
    return total / valid.sum().clamp_min(1)


def training_loss(out, labels: torch.Tensor | None, num_classes: int | None) -> torch.Tensor:
    """The loss of one training batch from a codec's :class:`~semsim.codec.CodecOutput`: MSE of
    ``prediction`` against ``target`` (reconstruction: on the [0, 1] pixel scale, or on [-1, 1] for
    the diffusion decoder's ``x0`` estimate, paper eq. 5), else :func:`segmentation_loss` of the
    logits against ``labels`` (eq. 6).

    :param labels: ``[B, H, W]`` int64 (segmentation) or None.
    """
    if out.target is not None:
        return F.mse_loss(out.prediction, out.target)
    return segmentation_loss(out.prediction, labels, num_classes)
