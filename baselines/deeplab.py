"""Deeplab-JSCC (``deeplab-jscc``): a DeepLabv3 encoder whose features cross the channel as analog
JSCC symbols, and a DeepLab decoder at the receiver.

Data flow (``H x W`` image reflect-padded to ``Hp x Wp``, multiples of the output stride ``s``)::

    image [B,3,H,W] ──ImageNet norm──▶ backbone (torchvision, atrous last stage(s)) [B,F,Hp/s,Wp/s]
        ──ASPP (torchvision's DeepLabv3 module)──▶ [B,A,Hp/s,Wp/s]
        ──3x3 conv (JSCC bottleneck)──▶ z [B,2C,Hp/s,Wp/s] real
        ──▶ symbols [B,N] complex, channel-major, N = min(budget cap of H x W, C·Hp/s·Wp/s)
    channel (power normalised per image) ──▶ y [B,N], ChannelInfo
    y ──zero-fill──▶ planes [B,6C+1,Hp/s,Wp/s] (y, h, mask, log10 no, SNR)
        ──DeepLab decoder (3x3 conv, BN, ReLU; 3x3 conv, BN, ReLU; 1x1)──▶ logits [B,K,Hp/s,Wp/s]
        ──bilinear x s, crop──▶ logits [B,K,H,W]

Training sends :meth:`~semsim.codec.LearnedCodec.training_symbols` symbols through the given channel, so one
model serves every budget up to its cap, like the paper's system.

This module also holds what both segmentation baselines share (presets, torchvision backbones,
ImageNet normalisation, the cross-entropy that ignores void); ``baselines/fcn.py`` imports them.

Example::

    >>> import torch
    >>> from semsim.codec import Budget
    >>> from semsim.channels import build_channel
    >>> codec = DeepLabJSCC(Budget("cbr", 1 / 16)).eval()
    >>> with torch.no_grad():
    ...     t = codec.transmit(torch.rand(1, 3, 40, 56), build_channel("awgn"), torch.tensor([10.0]))
    >>> t.output.shape, t.channel_uses == [codec.symbol_count(40, 56)]
    (torch.Size([1, 11, 40, 56]), True)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from semsim.codec import (CodecOutput, LearnedCodec, Task, latent_to_symbols, received_plane_count,
                          received_planes)
from semsim.errors import ConfigError
from semsim.registry import register
from semsim.semantic.source_kb import ceil_to, pad_to_multiple

PRESETS_FILE = Path(__file__).with_name("segmentation_presets.yaml")
#: torchvision's ImageNet statistics; the backbones are built without weights but keep their input scale
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ASPPPreset:
    """DeepLabv3's ASPP: output channels and atrous rates."""

    channels: int
    rates: list[int]


@dataclass(frozen=True)
class DeepLabJSCCPreset:
    """A ``deeplab-jscc`` preset (``segmentation_presets.yaml``): the torchvision backbone (its own
    options, see :func:`build_backbone`), the ASPP, complex symbols per latent position, the
    decoder's width and the default class count."""

    backbone: dict[str, Any]
    aspp: ASPPPreset
    channels: int
    decoder_width: int
    num_classes: int


# --- shared by both segmentation baselines ----------------------------------------------------------

def build_backbone(spec: dict[str, Any]) -> tuple[nn.Module, int, int]:
    """A torchvision backbone without pretrained weights, as torchvision's segmentation models use it.

    :param spec: ``{"name": "mobilenet_v3_large", "width_mult", "reduced_tail", "dilated"}`` or
        ``{"name": "resnet50" | "resnet101", "replace_stride_with_dilation": [b, b, b]}``.
    :returns: the module (``[B, 3, H, W]`` → ``{"out": [B, F, ceil(H/s), ceil(W/s)]}``), its
        channels ``F`` and its output stride ``s``.
    """
    from torchvision import models
    from torchvision.models._utils import IntermediateLayerGetter

    kwargs = dict(spec)
    name = kwargs.pop("name", None)
    try:
        if name == "mobilenet_v3_large":
            features = models.mobilenet_v3_large(weights=None, **kwargs).features
            stride = 16 if kwargs.get("dilated") else 32
            return (IntermediateLayerGetter(features, {str(len(features) - 1): "out"}),
                    features[-1].out_channels, stride)
        if name in ("resnet50", "resnet101"):
            dilation = list(kwargs.get("replace_stride_with_dilation", [False] * 3))
            net = getattr(models, name)(weights=None, **kwargs)
            return IntermediateLayerGetter(net, {"layer4": "out"}), net.fc.in_features, 32 // 2 ** sum(dilation)
    except TypeError as e:
        raise ConfigError(f"backbone {spec!r}: {e}") from None
    raise ConfigError(f"unknown backbone {name!r}; valid choices: 'mobilenet_v3_large', 'resnet50', 'resnet101'")


class ImageNetNorm(nn.Module):
    """``[B, 3, H, W]`` in [0, 1] → standardised by ImageNet statistics (non-persistent buffers:
    nothing in the weights file)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std


class SegmentationBaseline(LearnedCodec):
    """What both segmentation baselines share: a preset from ``segmentation_presets.yaml`` (with
    ``num_classes`` applied) built by :meth:`_build`, on the meta device if asked, then weights
    (see :class:`semsim.codec.LearnedCodec`). Subclasses set ``method`` and implement :meth:`_build`.
    """

    task = Task.SEGMENTATION
    presets_file = PRESETS_FILE

    def _check_task(self, task: Task | str) -> None:
        if Task(task) is not Task.SEGMENTATION:
            raise ConfigError(f"method {self.display_name!r} trains only segmentation, got task {Task(task).value!r}")


# --- Deeplab-JSCC ------------------------------------------------------------------------------------

class DeepLabDecoder(nn.Sequential):
    """The receiver: received planes → class logits on the latent grid.

    A 3x3 conv (no bias), BN and ReLU lift the planes to ``width``; then DeepLabv3's head after its
    ASPP (3x3 conv, BN, ReLU, 1x1 classifier).

    :input: ``[B, 6C+1, h, w]`` (:func:`semsim.codec.received_planes`).
    :output: ``[B, num_classes, h, w]`` logits.
    """

    def __init__(self, in_planes: int, width: int, num_classes: int):
        super().__init__(
            nn.Conv2d(in_planes, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.Conv2d(width, num_classes, 1))


@register("codec", "deeplab-jscc")
class DeepLabJSCC(SegmentationBaseline):
    """DeepLabv3 encoder + analog JSCC bottleneck + DeepLab decoder (see the module docstring).

    :param budget: channel-use cap per image.
    :param preset: ``"small"`` or ``"paper"`` (``segmentation_presets.yaml``).
    :param weights: a ``.safetensors`` file written by ``semsim train`` (checked against the preset).
    :param meta: build on PyTorch's meta device (parameter counting only; nothing is allocated).
    :param num_classes: segmentation classes (default: the preset's; the dataset's when training).
    """

    display_name = "Deeplab-JSCC"
    preset_type = DeepLabJSCCPreset
    #: small preset, 768x512 on a 2-core CPU (the paper preset is a GPU model)
    cost_s_per_mpixel = 0.5

    def _build(self, cfg: DeepLabJSCCPreset) -> None:
        self.norm = ImageNetNorm()
        self.backbone, features, self.output_stride = build_backbone(cfg.backbone)
        from torchvision.models.segmentation.deeplabv3 import ASPP

        self.aspp = ASPP(features, cfg.aspp.rates, cfg.aspp.channels)
        self.bottleneck = nn.Conv2d(cfg.aspp.channels, 2 * cfg.channels, 3, padding=1)
        self.decoder = DeepLabDecoder(received_plane_count(cfg.channels), cfg.decoder_width, cfg.num_classes)

    # --- contract -------------------------------------------------------------------------------
    def latent_symbols(self, height: int, width: int) -> int:
        """Complex symbols the latent holds for an ``height x width`` image: ``C · Hp/s · Wp/s``."""
        s = self.output_stride
        return self.cfg["channels"] * (ceil_to(height, s) // s) * (ceil_to(width, s) // s)

    def symbol_count(self, height: int, width: int) -> int:
        """Complex symbols sent for an ``height x width`` image: ``min(cap, C · Hp/s · Wp/s)``."""
        return min(self.budget.channel_uses(height, width), self.latent_symbols(height, width))

    def encode(self, images: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        return self._encode(images, self.symbol_count(*images.shape[-2:]))

    def decode(self, received, info, snr_db, image_size):
        return self._decode(received, info, snr_db, image_size)

    # --- the pieces -----------------------------------------------------------------------------
    def _encode(self, images: torch.Tensor, n: int) -> torch.Tensor:
        """``[B, 3, H, W]`` in [0, 1] → ``[B, n]`` complex64, the first ``n`` latent symbols."""
        x = self.norm(pad_to_multiple(images, self.output_stride)[0])
        z = self.bottleneck(self.aspp(self.backbone(x)["out"]))
        return latent_to_symbols(z, n)

    def _decode(self, received, info, snr_db, image_size) -> torch.Tensor:
        """``[B, N]`` received symbols → ``[B, num_classes, H, W]`` logits."""
        height, width = image_size
        s = self.output_stride
        snr_db = torch.as_tensor(snr_db, dtype=torch.float32, device=received.device).expand(received.shape[0])
        planes = received_planes(received, info, snr_db, self.cfg["channels"], ceil_to(height, s) // s,
                                 ceil_to(width, s) // s)
        logits = F.interpolate(self.decoder(planes), scale_factor=s, mode="bilinear", align_corners=False)
        return logits[..., :height, :width]

    # --- training -------------------------------------------------------------------------------
    def forward(self, task: Task, images: torch.Tensor, channel, snr_db: torch.Tensor) -> CodecOutput:
        """One training pass through ``channel`` (:meth:`semsim.codec.Codec.forward`) with
        :meth:`~semsim.codec.LearnedCodec.training_symbols` symbols: ``[B, num_classes, H, W]`` logits,
        scored by the cross-entropy ignoring void labels (:func:`semsim.nn.losses.training_loss`).
        """
        self._check_task(task)
        b, _, height, width = images.shape
        if self.training and b < 2:
            raise ConfigError(f"method {self.display_name!r} trains with batch norm after ASPP's image pooling (one "
                              f"value per channel and image), so it needs at least 2 images per batch (per rank)")
        x = self._encode(images, self.training_symbols(height, width, self.latent_symbols(height, width)))
        y, info = channel(x, snr_db)
        logits = self._decode(y, info, snr_db, (height, width))
        return CodecOutput(output=logits, prediction=logits)


__all__ = ["DeepLabJSCC", "DeepLabDecoder", "ImageNetNorm", "SegmentationBaseline", "build_backbone"]
