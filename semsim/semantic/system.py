"""The paper's multi-task generative semantic communication system as one codec (``semantic``).

Data flow (paper, Fig. 1; shapes for an ``H x W`` image padded to ``Hp x Wp``, multiples of 16)::

    request ──TaskKB──▶ task ∈ {reconstruction, segmentation}       (both ends, no bits sent)
    image [B,3,H,W] ──TxSourceKB(task)──▶ f [B,F,Hp/4,Wp/4]          (f_R = f1+f2+f3 | f_S = f2+f3)
    concat(unshuffle4(image), f) ──UnifiedJSCCEncoder──▶ z [B,2C,Hp/8,Wp/8] real
        ──▶ symbols [B,N] complex, channel-major, N = min(budget cap, C_task·Hp/8·Wp/8)
    channel (power normalised per image, y = h x + n) ──▶ y [B,N], ChannelInfo
    y ──zero-fill──▶ planes [B,6C+1,Hp/8,Wp/8]  (y, h, mask, log10 no, SNR)
      ──RxSourceKB(task)──▶ g (g1+g2 | g1)
      ──ReconstructionDecoder (DiT diffusion, x0-prediction) ──▶ image [B,3,H,W] in [0,1]
      ──SegmentationDecoder ──▶ logits [B,classes,H,W]

``C_task`` is ``channels`` for reconstruction and the smaller ``seg_channels`` for segmentation:
segmentation sends fewer symbols (the paper's claim that it needs less overhead), and the CSV's
``channel_uses`` column shows the counts. Symbols are ordered channel-major, so a smaller budget
sends the leading latent channels whole and the receiver fills what was not sent with zeros (a
mask plane says which); training varies ``N`` so that one model serves every budget up to its cap.

The choices the paper leaves open are recorded in ``docs/design.md``.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..channels import snr_vector
from ..codec import (Budget, CodecOutput, LearnedCodec, Task, latent_to_symbols, received_plane_count,
                     received_planes)
from ..errors import ConfigError, choices
from ..nn.blocks import ResBlock
from ..registry import register
from .source_kb import TxSourceKB, ceil_to, pad_to_multiple

PRESETS_FILE = Path(__file__).with_name("presets.yaml")


@dataclass(frozen=True)
class SwinPreset:
    """The Tx source KB's timm Swin stages."""

    embed_dim: int
    depths: list[int]
    num_heads: list[int]
    window_size: int
    patch_size: int


@dataclass(frozen=True)
class DiTPreset:
    """The reconstruction decoder's DiT: width, depth, heads and patch size."""

    width: int
    depth: int
    heads: int
    patch_size: int


@dataclass(frozen=True)
class SemanticPreset:
    """A ``semantic`` preset (``presets.yaml``, whose header explains each key)."""

    swin: SwinPreset
    feature_dim: int
    hidden: int
    channels: int
    seg_channels: int
    rx_hidden: int
    dit: DiTPreset
    up_channels: int
    seg_hidden: int
    seg_dropout: float
    num_classes: int
    diffusion_steps: int
#: spatial reduction from the image to the latent grid of channel symbols
LATENT_STRIDE = 8
TASK_INDEX = {Task.RECONSTRUCTION: 0, Task.SEGMENTATION: 1}


class UnifiedJSCCEncoder(nn.Module):
    """One JSCC encoder for both tasks (paper IV-A).

    ``concat(unshuffle4(image), f)`` → 3x3 conv to ``hidden`` → residual block → 3x3 conv with
    stride 2 → 3x3 conv to ``2 * channels`` real outputs (pairs = complex symbols).

    :input images: ``[B, 3, Hp, Wp]`` float in [0, 1], ``Hp, Wp`` multiples of 16.
    :input f: ``[B, feature_dim, Hp/4, Wp/4]`` the selected Tx feature.
    :output: ``[B, 2*channels, Hp/8, Wp/8]`` float (any scale; the channel normalises power).
    """

    def __init__(self, feature_dim: int, hidden: int, channels: int, kernel_size: int = 3):
        super().__init__()
        pad = kernel_size // 2
        self.conv_in = nn.Conv2d(3 * 16 + feature_dim, hidden, kernel_size, padding=pad)
        self.res = ResBlock(hidden, kernel_size)
        self.down = nn.Conv2d(hidden, hidden, kernel_size, stride=2, padding=pad)
        self.act = nn.GELU()
        self.conv_out = nn.Conv2d(hidden, 2 * channels, kernel_size, padding=pad)

    def forward(self, images: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        x = torch.cat([F.pixel_unshuffle(images, 4), f], dim=1)
        x = self.res(self.conv_in(x))
        return self.conv_out(self.act(self.down(x)))


class RxSourceKB(nn.Module):
    """Receiver source KB (paper III-C): feature generation by two residual blocks, then selection.

    A 3x3 input conv (plus a learned per-task bias: the receiver knows the task) lifts the
    received planes to ``hidden`` channels; ``g1 = res1(.)``, ``g2 = res2(g1)``. Selection:
    ``g1 + g2`` for reconstruction (all features), ``g1`` for segmentation (the first block's).

    :input planes: ``[B, 6C+1, h, w]`` (see :func:`semsim.codec.received_planes`).
    :output: ``[B, hidden, h, w]``.
    """

    def __init__(self, in_planes: int, hidden: int, kernel_size: int = 3):
        super().__init__()
        self.conv_in = nn.Conv2d(in_planes, hidden, kernel_size, padding=kernel_size // 2)
        self.task_bias = nn.Embedding(len(TASK_INDEX), hidden)
        nn.init.zeros_(self.task_bias.weight)
        self.res1 = ResBlock(hidden, kernel_size)
        self.res2 = ResBlock(hidden, kernel_size)

    def forward(self, planes: torch.Tensor, task: Task) -> torch.Tensor:
        x = self.conv_in(planes) + self.task_bias.weight[TASK_INDEX[task]][None, :, None, None]
        g1 = self.res1(x)
        if task is Task.SEGMENTATION:
            return g1
        return g1 + self.res2(g1)


class ReconstructionDecoder(nn.Module):
    """DiT-style conditional diffusion decoder on the latent grid (paper IV-B).

    Inputs on the ``Hp/8`` grid: the Rx feature ``g``, the received planes and the current
    estimate ``x_t`` (pixel-unshuffled by 8 to 192 planes), split by the DiT into 2x2 patches with
    positional embeddings; the conditioning vector is the time-step embedding plus an SNR
    embedding, applied by adaLN. The DiT output is upsampled to full resolution (a 1x1 conv and a pixel
    shuffle by 8) and refined by a residual block; the result is the predicted clean image.

    :input x_t: ``[B, 3, Hp, Wp]`` float, the noisy image in [-1, 1] scale.
    :input t: ``[B]`` int64 time steps.
    :input g: ``[B, rx_hidden, Hp/8, Wp/8]``; ``planes``: ``[B, 6C+1, Hp/8, Wp/8]``.
    :input snr_db: ``[B]`` float, Es/N0 in dB.
    :output: ``[B, 3, Hp, Wp]`` predicted clean image in [-1, 1] scale.
    """

    def __init__(self, rx_hidden: int, in_planes: int, width: int, depth: int, heads: int,
                 patch_size: int = 2, up_channels: int = 16, out_hidden: int | None = None):
        super().__init__()
        from ..nn.dit import DiT, SinusoidalEmbedder

        out_hidden = out_hidden or rx_hidden
        s = LATENT_STRIDE
        self.dit = DiT(rx_hidden + in_planes + 3 * s * s, out_hidden, width, depth, heads, patch_size=patch_size)
        self.t_embed = SinusoidalEmbedder(width)
        self.snr_embed = SinusoidalEmbedder(width)
        self.up = nn.Sequential(nn.Conv2d(out_hidden, up_channels * s * s, 1), nn.PixelShuffle(s))
        self.res = ResBlock(up_channels)
        self.conv_out = nn.Conv2d(up_channels, 3, 3, padding=1)

    def forward(self, x_t, t, g, planes, snr_db):
        c = self.t_embed(t.float()) + self.snr_embed(snr_db.float())
        h = self.dit(torch.cat([g, planes, F.pixel_unshuffle(x_t, LATENT_STRIDE)], dim=1), c)
        return self.conv_out(self.res(self.up(h)))


class SegmentationDecoder(nn.Module):
    """ResNet segmentation decoder (paper IV-B).

    A 3x3 conv on ``concat(g, planes)``, two residual blocks with an outer skip
    (``x + res2(res1(x))``), dropout 0.1, a 1x1 conv to class logits and bilinear upsampling by 8.
    The paper upsamples before the 1x1 conv; both are linear per pixel, so the order gives the same
    logits and this one costs 64x less memory.

    :input g: ``[B, rx_hidden, h, w]``; ``planes``: ``[B, 6C+1, h, w]``.
    :output: ``[B, num_classes, 8h, 8w]`` logits.
    """

    def __init__(self, rx_hidden: int, in_planes: int, hidden: int, num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.conv_in = nn.Conv2d(rx_hidden + in_planes, hidden, 3, padding=1)
        self.res1 = ResBlock(hidden)
        self.res2 = ResBlock(hidden)
        self.dropout = nn.Dropout2d(dropout)
        self.classify = nn.Conv2d(hidden, num_classes, 1)

    def forward(self, g: torch.Tensor, planes: torch.Tensor) -> torch.Tensor:
        x = self.conv_in(torch.cat([g, planes], dim=1))
        x = x + self.res2(self.res1(x))
        logits = self.classify(self.dropout(x))
        return F.interpolate(logits, scale_factor=LATENT_STRIDE, mode="bilinear", align_corners=False)


@register("codec", "semantic")
class SemanticCodec(LearnedCodec):
    """The paper's system (task KB, Swin Tx source KB, unified JSCC encoder, Rx source KB, DiT
    diffusion and ResNet segmentation decoders) under the codec contract.

    :param budget: channel-use cap per image.
    :param preset: ``"small"`` or ``"paper"`` (``presets.yaml``).
    :param task: the task instruction, ``"reconstruction"`` or ``"segmentation"``.
    :param request: a free-text requirement instead of ``task`` ("label every pixel"), mapped to the
        instruction by the task KB (Sentence-BERT; an unrelated request is an error, and so is one
        whose best two tasks score within the KB's margin: the message suggests ``task:``).
    :param weights: a ``.safetensors`` file written by ``semsim train`` (checked against the preset).
    :param sampling_steps: DDIM steps of the reconstruction decoder; 1 is the MMSE estimate.
    :param num_classes: segmentation classes (default: the weights', else the preset's).
    :param meta: build on PyTorch's meta device (parameter counting only; nothing is allocated).
    """

    display_name = "GenSC"
    presets_file = PRESETS_FILE
    preset_type = SemanticPreset
    cost_s_per_mpixel = 2.0

    def __init__(self, budget: Budget, preset: str = "small", task: str | None = None, request: str | None = None,
                 weights: str | None = None, sampling_steps: int = 1, num_classes: int | None = None,
                 meta: bool = False):
        task = _resolve_task(task, request)
        super().__init__(budget, preset=preset, weights=weights, meta=meta, num_classes=num_classes)
        self.task = task
        if isinstance(sampling_steps, bool) or not isinstance(sampling_steps, int) \
                or not 1 <= sampling_steps <= self.arch.diffusion_steps:
            raise ConfigError(f"sampling_steps must be an integer in [1, {self.arch.diffusion_steps}], "
                              f"got {sampling_steps!r}")
        self.sampling_steps = sampling_steps
        if sampling_steps != 1:
            self.display_name = f"GenSC ({sampling_steps} steps)"
        from ..nn.diffusion import Diffusion

        self.diffusion = Diffusion(num_train_timesteps=self.arch.diffusion_steps)

    def _build(self, cfg: SemanticPreset) -> None:
        planes = received_plane_count(cfg.channels)
        sw = cfg.swin
        self.tx_kb = TxSourceKB(embed_dim=sw.embed_dim, depths=tuple(sw.depths), num_heads=tuple(sw.num_heads),
                                window_size=sw.window_size, patch_size=sw.patch_size, feature_dim=cfg.feature_dim)
        self.encoder = UnifiedJSCCEncoder(cfg.feature_dim, cfg.hidden, cfg.channels)
        self.rx_kb = RxSourceKB(planes, cfg.rx_hidden)
        d = cfg.dit
        self.recon_decoder = ReconstructionDecoder(cfg.rx_hidden, planes, d.width, d.depth, d.heads, d.patch_size,
                                                   cfg.up_channels)
        self.seg_decoder = SegmentationDecoder(cfg.rx_hidden, planes, cfg.seg_hidden, cfg.num_classes,
                                               cfg.seg_dropout)

    # --- contract -------------------------------------------------------------------------------
    @property
    def tasks(self) -> tuple[Task, ...]:
        return (Task.RECONSTRUCTION, Task.SEGMENTATION)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "sampling_steps": self.sampling_steps}

    def latent_symbols(self, task: Task, height: int, width: int) -> int:
        """Complex symbols the latent holds for ``task``: ``C_task * Hp/8 * Wp/8``."""
        grid = ceil_to(height, 16) // LATENT_STRIDE * (ceil_to(width, 16) // LATENT_STRIDE)
        return (self.cfg["channels"] if task is Task.RECONSTRUCTION else self.cfg["seg_channels"]) * grid

    def symbol_count(self, task: Task, height: int, width: int) -> int:
        """Complex symbols sent for an ``height x width`` image: ``min(cap, C_task * Hp/8 * Wp/8)``."""
        return min(self.budget.channel_uses(height, width), self.latent_symbols(task, height, width))

    def configure_training(self, last_step_prob: float | None = None) -> None:
        """Training options of a recipe: ``last_step_prob``, how often a reconstruction batch is
        trained at ``t = T-1``, the only step 1-step decoding uses (:class:`~semsim.nn.diffusion.Diffusion`)."""
        if last_step_prob is not None:
            from ..nn.diffusion import Diffusion

            if isinstance(last_step_prob, bool) or not isinstance(last_step_prob, (int, float)) \
                    or not 0 <= last_step_prob <= 1:
                raise ConfigError(f"last_step_prob must be a number in [0, 1], got {last_step_prob!r}")
            self.diffusion = Diffusion(self.cfg["diffusion_steps"], last_step_prob=float(last_step_prob))

    def shared_modules(self) -> dict[str, torch.nn.Module]:
        """The Tx source KB, the unified JSCC encoder and the Rx source KB serve both tasks."""
        return {"tx_kb": self.tx_kb, "encoder": self.encoder, "rx_kb": self.rx_kb}

    def encode(self, images: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        n = self.symbol_count(self.task, *images.shape[-2:])
        return self._encode(images, self.task, n)

    def decode(self, received, info, snr_db, image_size):
        return self._decode(received, info, snr_db, image_size, self.task, steps=self.sampling_steps)

    # --- the pieces -----------------------------------------------------------------------------
    def _encode(self, images: torch.Tensor, task: Task, n: int) -> torch.Tensor:
        """``[B, 3, H, W]`` in [0, 1] → ``[B, n]`` complex64, the first ``n`` latent symbols."""
        x, _ = pad_to_multiple(images, TxSourceKB.MULTIPLE)
        return latent_to_symbols(self.encoder(x, self.tx_kb(x, task.value)), n)

    def _planes(self, received: torch.Tensor, info, snr_db: torch.Tensor, image_size) -> torch.Tensor:
        """Zero-fill ``[B, N]`` received symbols onto the ``[B, C, Hp/8, Wp/8]`` grid, with CSI planes."""
        h, w = (ceil_to(s, 16) // LATENT_STRIDE for s in image_size)
        return received_planes(received, info, snr_db, self.cfg["channels"], h, w)

    def _decode(self, received, info, snr_db, image_size, task: Task, steps: int = 1):
        height, width = image_size
        snr_db = snr_vector(snr_db, received.shape[0], received.device)
        planes = self._planes(received, info, snr_db, image_size)
        g = self.rx_kb(planes, task)
        if task is Task.SEGMENTATION:
            return self.seg_decoder(g, planes)[..., :height, :width]
        b, _, h, w = planes.shape
        shape = (b, 3, h * LATENT_STRIDE, w * LATENT_STRIDE)
        x0 = self.diffusion.sample(lambda x_t, t: self.recon_decoder(x_t, t, g, planes, snr_db), shape,
                                   steps=steps, device=received.device)
        return ((x0[..., :height, :width] + 1) / 2).clamp(0, 1)

    # --- training -------------------------------------------------------------------------------
    def forward(self, task: Task, images: torch.Tensor, channel, snr_db: torch.Tensor) -> CodecOutput:
        """One training pass through ``channel`` (:meth:`semsim.codec.Codec.forward`): segmentation
        logits, or the diffusion decoder's x0-prediction at a sampled time step
        (:meth:`_diffusion_forward`). The loss (MSE, eq. 5; cross-entropy ignoring void labels, eq. 6)
        is :func:`semsim.nn.losses.training_loss`.

        The symbol count follows :meth:`semsim.codec.LearnedCodec.training_symbols` (the recipe's
        ``symbols`` policy), so one model serves other budgets too.
        """
        task = Task(task)
        _, _, height, width = images.shape
        n = self.training_symbols(height, width, self.latent_symbols(task, height, width))
        x = self._encode(images, task, n)
        y, info = channel(x, snr_db)
        planes = self._planes(y, info, snr_db, (height, width))
        g = self.rx_kb(planes, task)
        if task is Task.SEGMENTATION:
            logits = self.seg_decoder(g, planes)[..., :height, :width]
            return CodecOutput(output=logits, prediction=logits)
        return self._diffusion_forward(images, g, planes, snr_db)

    def _diffusion_forward(self, images: torch.Tensor, g: torch.Tensor, planes: torch.Tensor,
                           snr_db: torch.Tensor) -> CodecOutput:
        """The diffusion decoder's training pass: the clean image in [-1, 1] (reflect-padded) noised
        to a time step drawn by :meth:`~semsim.nn.diffusion.Diffusion.sample_timesteps`, and the
        decoder's estimate of it (x0-prediction), compared with ``2 images - 1`` by the loss."""
        b, _, height, width = images.shape
        x0, _ = pad_to_multiple(images * 2 - 1, TxSourceKB.MULTIPLE)
        t = self.diffusion.sample_timesteps(b, images.device)
        x_t = self.diffusion.add_noise(x0, torch.randn_like(x0), t)
        pred = self.recon_decoder(x_t, t, g, planes, snr_db)[..., :height, :width]
        return CodecOutput(output=((pred.detach() + 1) / 2).clamp(0, 1), prediction=pred, target=images * 2 - 1)


@functools.lru_cache(maxsize=1)
def task_kb():
    """The shared task KB (Sentence-BERT is loaded once per process)."""
    from .task_kb import TaskKB

    return TaskKB()


def _resolve_task(task: str | None, request: str | None) -> Task:
    """The codec's task: :func:`~semsim.semantic.task_kb.parse_task`, reconstruction by default."""
    from .task_kb import parse_task

    return parse_task(task, request)[0] or Task.RECONSTRUCTION


__all__ = ["SemanticCodec", "UnifiedJSCCEncoder", "RxSourceKB", "ReconstructionDecoder", "SegmentationDecoder"]
