"""ADJSCC (Xu, Ai, Chen, Yang and Chen, 2021) as codec ``adjscc``: Deep JSCC with GDN/IGDN and
SNR-fed attention-feature (AF) modules, so that one model adapts to the SNR.

Encoder (five feature-learning modules, latent stride 4)::

    conv 9x9/2 → GDN → PReLU → AF,  conv 5x5/2 → GDN → PReLU → AF,
    conv 5x5/1 → GDN → PReLU → AF,  conv 5x5/1 → GDN → PReLU → AF,  conv 5x5/1 (2C) → GDN

Decoder (mirror, transposed convolutions with IGDN)::

    deconv 5x5/1 → IGDN → PReLU → AF  (x3),  deconv 5x5/2 → IGDN → PReLU → AF,
    deconv 9x9/2 (3) → IGDN → sigmoid

AF module: global average pool over space → concat the SNR → FC (width/16, ReLU) → FC (width,
sigmoid) → scale the channels. Both ends know the average SNR; the receiver uses the zero-filled
``y`` planes and the SNR, nothing else.

GDN is implemented here (:class:`GDN`, Ballé et al., 2016, with CompressAI's reparametrisation):
CompressAI 1.2.8, the only release on the package index, pins ``numpy<2`` and pulls in
torch-geometric, so installing it would downgrade the NumPy that Sionna and the rest of semsim use.

Example::

    >>> import torch
    >>> from semsim.codec import Budget
    >>> from semsim.channels import build_channel
    >>> codec = ADJSCC(Budget("cbr", 1 / 16), preset="small").eval()
    >>> with torch.no_grad():
    ...     t = codec.transmit(torch.rand(2, 3, 40, 56), build_channel("rayleigh"), torch.tensor([0.0, 15.0]))
    >>> t.output.shape, t.channel_uses
    (torch.Size([2, 3, 40, 56]), [420, 420])
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from semsim.registry import register

from .deepjscc import (SNR_SCALE_DB, DeepJSCCPreset, NeuralJSCC, check_strides, conv, deconv, decoder_planes,
                       init_conv)


@dataclass(frozen=True)
class ADJSCCPreset(DeepJSCCPreset):
    """An ``adjscc`` preset: a ``deepjscc`` one plus the first encoder (last decoder) layer's kernel
    size and the attention-feature modules' reduction (hidden units = width // af_reduction)."""

    first_kernel_size: int
    af_reduction: int

#: CompressAI's reparametrisation offset: parameters are stored as sqrt(value + offset^2)
REPARAM_OFFSET = 2.0**-18


class _LowerBound(torch.autograd.Function):
    """``max(x, bound)`` whose gradient also flows below the bound when it pushes ``x`` up
    (CompressAI's ``LowerBound``), so a parameter at the bound can leave it again."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, bound: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.bound = bound
        return x.clamp_min(bound)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad * ((x >= ctx.bound) | (grad < 0)).to(grad.dtype), None


class GDN(nn.Module):
    """Generalised divisive normalisation (Ballé, Laparra and Simoncelli, 2016).

    ``y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)``, or ``x_i * sqrt(...)`` for the inverse
    (IGDN). ``beta`` and ``gamma`` are kept non-negative by CompressAI's reparametrisation: the
    stored parameter ``p`` gives ``max(p, bound)^2 - offset^2`` (``beta >= beta_min``).

    :param channels: input = output channels.
    :param inverse: IGDN.
    :input x: ``[B, channels, H, W]`` float.
    :output: ``[B, channels, H, W]`` float.
    """

    def __init__(self, channels: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.pedestal = REPARAM_OFFSET**2
        self.beta_bound = (beta_min + self.pedestal) ** 0.5
        self.gamma_bound = self.pedestal**0.5
        self.beta = nn.Parameter(torch.sqrt(torch.ones(channels) + self.pedestal))
        self.gamma = nn.Parameter(torch.sqrt(gamma_init * torch.eye(channels) + self.pedestal))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = _LowerBound.apply(self.beta, self.beta_bound) ** 2 - self.pedestal
        gamma = _LowerBound.apply(self.gamma, self.gamma_bound) ** 2 - self.pedestal
        norm = F.conv2d(x * x, gamma[:, :, None, None], beta)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)


class AFModule(nn.Module):
    """Attention feature module: channel scaling predicted from the pooled features and the SNR.

    :param channels: feature channels.
    :param reduction: hidden units = ``channels // reduction`` (16 in the paper).
    :input x: ``[B, channels, H, W]``; ``snr_db``: ``[B]`` float, dB.
    :output: ``[B, channels, H, W]``, ``x`` scaled per channel by factors in (0, 1).
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc = nn.Sequential(nn.Linear(channels + 1, hidden), nn.ReLU(), nn.Linear(hidden, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        context = torch.cat([x.mean(dim=(2, 3)), snr_db.to(x.dtype)[:, None] / SNR_SCALE_DB], dim=1)
        return x * self.fc(context)[:, :, None, None]


class _Stage(nn.Module):
    """One feature-learning module: (transposed) conv → GDN/IGDN → PReLU → AF (the last: no PReLU, no
    AF; the decoder's last ends in a sigmoid)."""

    def __init__(self, layer: nn.Module, channels: int, inverse: bool, last: bool, reduction: int):
        super().__init__()
        self.layer = layer
        self.gdn = GDN(channels, inverse=inverse)
        self.act = nn.Identity() if last else nn.PReLU(channels)
        self.af = None if last else AFModule(channels, reduction)

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        x = self.act(self.gdn(self.layer(x)))
        return x if self.af is None else self.af(x, snr_db)


class ADJSCCEncoder(nn.Module):
    """:input x: ``[B, 3, Hp, Wp]`` in [0, 1]; ``snr_db``: ``[B]``.
    :output: ``[B, 2*channels, Hp/s, Wp/s]`` float."""

    def __init__(self, widths, strides, kernel_size, first_kernel_size, channels, reduction):
        super().__init__()
        dims = [3, *widths, 2 * channels]
        kernels = [first_kernel_size] + [kernel_size] * 4
        self.stages = nn.ModuleList(
            _Stage(conv(cin, cout, k, s), cout, inverse=False, last=i == 4, reduction=reduction)
            for i, (cin, cout, k, s) in enumerate(zip(dims[:-1], dims[1:], kernels, strides)))

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x, snr_db)
        return x


class ADJSCCDecoder(nn.Module):
    """:input y: ``[B, 2*channels, h, w]`` zero-filled received planes (with ``mask_plane`` then the
    ``channels`` mask planes: ``[B, 3*channels, h, w]``); ``snr_db``: ``[B]``.
    :output: ``[B, 3, h*s, w*s]`` in [0, 1]."""

    def __init__(self, widths, strides, kernel_size, first_kernel_size, channels, reduction, mask_plane=False):
        super().__init__()
        dims = [decoder_planes(channels, mask_plane), *reversed(widths), 3]
        kernels = [kernel_size] * 4 + [first_kernel_size]
        self.stages = nn.ModuleList(
            _Stage(deconv(cin, cout, k, s), cout, inverse=True, last=i == 4, reduction=reduction)
            for i, (cin, cout, k, s) in enumerate(zip(dims[:-1], dims[1:], kernels, reversed(strides))))

    def forward(self, y: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            y = stage(y, snr_db)
        return torch.sigmoid(y)


@register("codec", "adjscc")
class ADJSCC(NeuralJSCC):
    """ADJSCC (Xu et al., 2021): SNR-adaptive Deep JSCC with GDN and attention-feature modules.

    :param budget: channel-use cap per image.
    :param preset: ``"small"`` (width 144) or ``"paper"`` (width 256, as the paper).
    :param weights: a ``.safetensors`` file written by ``semsim train``.
    :param meta: build on PyTorch's meta device.
    """

    display_name = "ADJSCC"
    cost_s_per_mpixel = 5.0
    preset_type = ADJSCCPreset
    decoder_input = ("decoder.stages.0.layer.weight", 0)
    # latent_output stays empty: the last GDN normalises each latent channel by all of them

    def _build(self, cfg: ADJSCCPreset) -> None:
        self.stride = check_strides(cfg.strides)
        args = (cfg.widths, cfg.strides, cfg.kernel_size, cfg.first_kernel_size, cfg.channels, cfg.af_reduction)
        self.encoder = ADJSCCEncoder(*args)
        self.decoder = ADJSCCDecoder(*args, mask_plane=cfg.mask_plane)
        self.apply(init_conv)


__all__ = ["ADJSCC", "ADJSCCEncoder", "ADJSCCDecoder", "AFModule", "GDN"]
