"""Training losses shared by semsim's learned codecs."""
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
