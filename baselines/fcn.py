"""JPEG + LDPC + QAM + FCN (``jpeg+ldpc+fcn``): the digital chain delivers the image, an FCN
segments what arrives.

Data flow::

    image [B,3,H,W] ──SeparationCodec (JPEG fitted to the budget, 5G LDPC, QAM, channel, decode)──▶
        received image [B,3,H,W] (mid-grey where the link failed)
        ──ImageNet norm──▶ torchvision FCN (backbone + FCNHead, bilinear upsampling)──▶ logits [B,K,H,W]

The digital chain is :class:`~baselines.separation.SeparationCodec` itself (held, not copied): its
``mcs`` sweep axis, budget fitting, ``channel_uses``, ``bits``, ``failed`` and per-image columns
(``mcs``, ``code_rate``, ``quality``, ``bler``) are reported unchanged. Where the link fails the
FCN segments the fallback image and that output is scored; ``failed`` stays True for the image.

Training follows the FCN paper: the FCN is a separate network, trained on clean images of the
segmentation data; :meth:`DigitalFCNCodec.forward` ignores the channel and the SNR (the link
has no parameters, and backpropagating through JPEG and LDPC decoding is neither possible nor what
the baseline describes).

Example::

    >>> import torch
    >>> from semsim.codec import Budget
    >>> from semsim.channels import build_channel
    >>> from semsim.registry import build
    >>> codec = build("codec", "jpeg+ldpc+fcn", budget=Budget("cbr", 1 / 2)).with_axes(mcs="16qam-1/2").eval()
    >>> ramp = torch.linspace(0, 1, 56).expand(1, 3, 40, 56)
    >>> with torch.no_grad():
    ...     t = codec.transmit(ramp, build_channel("awgn"), 20.0)
    >>> t.output.shape, t.failed, t.extra["mcs"]
    (torch.Size([1, 11, 40, 56]), [False], ['16qam-1/2'])
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from collections.abc import Sequence
from typing import Any, ClassVar

import torch

from semsim.codec import Budget, CodecOutput, Transmission
from semsim.errors import ConfigError, choices
from semsim.registry import register


from .deeplab import ImageNetNorm, SegmentationBaseline, build_backbone
from .separation import SOURCE_LABELS, SeparationCodec


@dataclass(frozen=True)
class FCNPreset:
    """A ``jpeg+ldpc+fcn`` preset (``segmentation_presets.yaml``): the torchvision backbone (see
    :func:`~semsim.baselines.deeplab.build_backbone`) and the default class count."""

    backbone: dict[str, Any]
    num_classes: int


@register("codec", "jpeg+ldpc+fcn", source="jpeg")
class DigitalFCNCodec(SegmentationBaseline):
    """:class:`SeparationCodec` + torchvision FCN (see the module docstring).

    :param budget: channel uses per image.
    :param source: the digital chain's source coder (registered: ``"jpeg"``).
    :param preset: ``"small"`` or ``"paper"`` (``segmentation_presets.yaml``; ``paper`` is
        ``fcn_resnet50``).
    :param weights: a ``.safetensors`` file written by ``semsim train`` (checked against the preset).
    :param meta: build on PyTorch's meta device (parameter counting only; nothing is allocated).
    :param num_classes: segmentation classes (default: the preset's; the dataset's when training).
    :param mcs: the MCS values swept, as for :class:`SeparationCodec`.
    :param codeword_length: LDPC codeword length ``n`` (default 1944).
    :param num_bp_iter: LDPC belief-propagation iterations (default 20).
    :param scaling: resolution in the digital chain's rate control, ``"best"`` (default),
        ``"fallback"`` or ``"off"``, as for :class:`SeparationCodec`.
    :param restart_rows: JPEG restart marker every this many MCU rows (default: 1 for JPEG; 0: none).
    :param conceal: with restart markers, conceal the intervals of failed codewords (default ``True``).
    """

    axes: ClassVar[tuple[str, ...]] = SeparationCodec.axes
    display_name = "JPEG+LDPC+FCN"
    preset_type = FCNPreset
    channel_in_training: ClassVar[bool] = False  # the FCN trains on clean images
    #: the digital chain's cost plus an FCN forward pass (small preset, 2-core CPU)
    cost_s_per_mpixel: ClassVar[float] = SeparationCodec.cost_s_per_mpixel + 0.3

    def __init__(self, budget: Budget, source: str = "jpeg", preset: str = "small", weights: str | None = None,
                 meta: bool = False, num_classes: int | None = None, mcs: str | Sequence[str] = "all",
                 codeword_length: int = 1944, num_bp_iter: int = 20, scaling: str = "best",
                 restart_rows: int | None = None, conceal: bool = True):
        super().__init__(budget, preset=preset, weights=weights, meta=meta, num_classes=num_classes)
        self.digital = SeparationCodec(budget, source=source, mcs=mcs, codeword_length=codeword_length,
                                       num_bp_iter=num_bp_iter, scaling=scaling, restart_rows=restart_rows,
                                       conceal=conceal)
        self.display_name = f"{SOURCE_LABELS[source]}+LDPC+FCN"

    def _build(self, cfg: FCNPreset) -> None:
        from torchvision.models.segmentation.fcn import FCN, FCNHead

        self.norm = ImageNetNorm()
        backbone, features, _ = build_backbone(cfg.backbone)
        self.fcn = FCN(backbone, FCNHead(features, cfg.num_classes))

    # --- the digital chain's axes and budget ----------------------------------------------------
    def sweep_values(self) -> dict[str, list[Any]]:
        return self.digital.sweep_values()

    def with_axes(self, **point: Any) -> "DigitalFCNCodec":
        unknown = sorted(set(point) - set(self.axes))
        if unknown:
            raise ConfigError(f"method {self.display_name!r}: unknown axis {choices(unknown)}; "
                              f"valid choices: {choices(self.axes)}")
        digital = self.digital.with_axes(**point)
        if digital is self.digital:
            return self
        # A shallow copy shares the FCN (weights, train/eval mode); only the digital chain differs.
        codec = copy.copy(self)
        codec._modules = {**self._modules, "digital": digital}
        return codec

    @property
    def mcs(self) -> str:
        """The one MCS the digital chain sends with; :class:`ConfigError` while several are swept."""
        mcs_list = self.digital.mcs_list
        if len(mcs_list) != 1:
            raise ConfigError(f"method {self.display_name!r} sweeps {len(mcs_list)} MCS values; pick one with "
                              f"with_axes(mcs=...) or the option mcs (a training scenario validates through "
                              f"the link, so give the method one, e.g. mcs: 16qam-1/2): {choices(mcs_list)}")
        return mcs_list[0]

    def min_channel_uses(self, height: int, width: int) -> int:
        return self.digital.min_channel_uses(height, width)

    def max_info_bits(self, height: int, width: int, mcs: str | None = None) -> int:
        return self.digital.max_info_bits(height, width, mcs)

    # --- contract -------------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        return {**self.digital.describe(), **super().describe()}

    def segment(self, images: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` float in [0, 1] → ``[B, num_classes, H, W]`` logits."""
        return self.fcn(self.norm(images))["out"]

    def encode(self, images: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        """One image ``[1, 3, H, W]`` → ``[1, N]`` complex64 (the digital chain's packet)."""
        _ = self.mcs  # one MCS must be picked (ConfigError naming the option otherwise)
        return self.digital.encode(images, snr_db)

    def decode(self, received, info, snr_db, image_size) -> torch.Tensor:
        """``[1, N]`` received symbols of the last :meth:`encode` → ``[1, num_classes, H, W]`` logits."""
        return self.segment(self.digital.decode(received, info, snr_db, image_size))

    def transmit(self, images: torch.Tensor, channel, snr_db: float | torch.Tensor) -> Transmission:
        """The digital chain per image, then the FCN on the batch of received (or fallback) images."""
        _ = self.mcs  # one MCS must be picked (ConfigError naming the option otherwise)
        tr = self.digital.transmit(images, channel, snr_db)
        return dataclasses.replace(tr, output=self.segment(tr.output))

    # --- training -------------------------------------------------------------------------------
    def forward(self, task, images: torch.Tensor, channel, snr_db: torch.Tensor) -> CodecOutput:
        """The FCN on the clean ``images`` (``channel`` and ``snr_db`` are ignored: the FCN is
        trained apart from the link, as in the paper): ``[B, num_classes, H, W]`` logits, scored by
        the cross-entropy ignoring void labels (:func:`semsim.nn.losses.training_loss`).
        """
        self._check_task(task)
        logits = self.segment(images)
        return CodecOutput(output=logits, prediction=logits)


__all__ = ["DigitalFCNCodec"]
