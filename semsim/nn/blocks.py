"""Convolutional building blocks shared by semsim's learned codecs."""
from __future__ import annotations

import torch
from torch import nn


class ResBlock(nn.Module):
    """Residual block: ``x + conv(act(conv(x)))`` with 3x3 convolutions (He et al., 2016).

    No normalisation layer: batches at evaluation are as small as one full-size image, and the
    image-regression literature (EDSR) finds normalisation unhelpful there.

    :param channels: input = output channels.
    :param kernel_size: odd kernel size (Table I: 3).
    :input x: ``[B, channels, H, W]`` float.
    :output: ``[B, channels, H, W]`` float.
    """

    def __init__(self, channels: int, kernel_size: int = 3):
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv2d(channels, channels, kernel_size, padding=pad)
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(channels, channels, kernel_size, padding=pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))
