"""WITT (Yang, Xu, Zhang, Niu and Zhang, 2023), the wireless image transmission transformer, as codec
``witt``: Swin-Transformer JSCC with SNR-adaptive channel modulation.

Encoder (``patch_size`` 2, latent stride 16; shapes NHWC inside)::

    image ──conv 2x2/2 + LayerNorm──▶ stage 1 (Swin blocks, e1) ──▶ stage 2..4 (patch merging,
    Swin blocks, e2..e4) ──LayerNorm──▶ channel modulation(snr) ──Linear──▶ z [B,2C,Hp/16,Wp/16]

Decoder (the mirror)::

    y planes [B,2C,h,w] ──Linear──▶ e4 ──channel modulation(snr)──▶ for e4..e1: Swin blocks, then
    patch expanding (LayerNorm, Linear to 4x the next width, pixel shuffle by 2; the last to 3) ──▶
    sigmoid ──▶ image [B,3,16h,16w]

The Swin stages are timm's :class:`~timm.models.swin_transformer.SwinTransformerStage` (stage 1
and the decoder's stages without patch merging), built with ``always_partition`` and
``dynamic_mask`` so that the window stays ``window_size`` for any input size: timm pads each block's
input to whole windows and computes the shift mask for the actual size. The image itself is
reflect-padded to a multiple of 16 (so each patch merging halves evenly) and cropped back.

Channel modulation (WITT, Fig. 2): ``t = x``; for each of ``layers``: ``t = Linear(t) *
g_i(snr)``, with ``g_i`` an MLP ``1 → M → M → M`` (ReLU, ReLU, sigmoid) of the SNR; finally
``x * sigmoid(Linear(t))``, a per-token, per-channel scaling conditioned on the SNR.

Example::

    >>> import torch
    >>> from semsim.codec import Budget
    >>> from semsim.channels import build_channel
    >>> codec = WITT(Budget("cbr", 1 / 16), preset="small").eval()
    >>> with torch.no_grad():
    ...     t = codec.transmit(torch.rand(1, 3, 40, 56), build_channel("awgn"), torch.tensor([10.0]))
    >>> t.output.shape, t.channel_uses
    (torch.Size([1, 3, 40, 56]), [420])
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from semsim.errors import ConfigError
from semsim.registry import register

from .deepjscc import SNR_SCALE_DB, NeuralJSCC, decoder_planes


@dataclass(frozen=True)
class ModulationPreset:
    """SNR-adaptive channel modulation: ``layers`` gated linear layers of ``hidden_ratio`` x the width."""

    layers: int
    hidden_ratio: float


@dataclass(frozen=True)
class WITTPreset:
    """A ``witt`` preset (``reconstruction_presets.yaml``): patch embedding, the four Swin stages of
    the encoder (the decoder reverses them), Swin blocks, the modulation and the complex symbols
    per latent position."""

    patch_size: int
    embed_dims: list[int]
    depths: list[int]
    num_heads: list[int]
    window_size: int
    mlp_ratio: float
    modulation: ModulationPreset
    channels: int
    mask_plane: bool = False

#: patch mergings after the patch embedding (WITT: four stages, the first without merging)
STAGES = 4


def _stage(dim: int, out_dim: int, depth: int, heads: int, window_size: int, mlp_ratio: float,
           downsample: bool) -> nn.Module:
    from timm.models.swin_transformer import SwinTransformerStage

    # input_resolution only matters without always_partition / dynamic_mask; any value will do
    return SwinTransformerStage(dim=dim, out_dim=out_dim, input_resolution=(2 * window_size, 2 * window_size),
                                depth=depth, downsample=downsample, num_heads=heads, window_size=window_size,
                                always_partition=True, dynamic_mask=True, mlp_ratio=mlp_ratio)


class SNRGate(nn.Module):
    """WITT's adaptive modulator: ``snr → sigmoid(MLP(snr))``, ``[B] → [B, width]``."""

    def __init__(self, width: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(1, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(),
                                nn.Linear(width, width), nn.Sigmoid())

    def forward(self, snr_db: torch.Tensor) -> torch.Tensor:
        return self.fc(snr_db[:, None] / SNR_SCALE_DB)


class ChannelModulation(nn.Module):
    """SNR-adaptive channel modulation (WITT's channel-wise soft attention).

    :param dim: feature channels.
    :param hidden: width ``M`` of the gated layers (WITT: 1.5 ``dim``).
    :param layers: gated layers (WITT: 7).
    :input x: ``[B, H, W, dim]``; ``snr_db``: ``[B]`` dB.
    :output: ``[B, H, W, dim]``, ``x`` scaled by factors in (0, 1).
    """

    def __init__(self, dim: int, hidden: int, layers: int):
        super().__init__()
        if layers < 1:
            raise ConfigError(f"witt: modulation.layers must be at least 1, got {layers!r}")
        self.linears = nn.ModuleList([nn.Linear(dim, hidden)] + [nn.Linear(hidden, hidden) for _ in range(layers - 1)])
        self.gates = nn.ModuleList(SNRGate(hidden) for _ in range(layers))
        self.out = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        t = x
        for linear, gate in zip(self.linears, self.gates):
            t = linear(t) * gate(snr_db.to(x.dtype))[:, None, None, :]
        return x * torch.sigmoid(self.out(t))


class PatchExpand(nn.Module):
    """Inverse of patch merging: LayerNorm, Linear to ``4 * out_dim``, pixel shuffle by 2.

    :input x: ``[B, H, W, dim]``. :output: ``[B, 2H, 2W, out_dim]``.
    """

    def __init__(self, dim: int, out_dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.expand = nn.Linear(dim, 4 * out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.expand(self.norm(x)).permute(0, 3, 1, 2)
        return nn.functional.pixel_shuffle(x, 2).permute(0, 2, 3, 1)


def _modulation(dim: int, cfg: WITTPreset) -> ChannelModulation:
    m = cfg.modulation
    return ChannelModulation(dim, int(round(dim * m.hidden_ratio)), int(m.layers))


class WITTEncoder(nn.Module):
    """:input x: ``[B, 3, Hp, Wp]`` in [0, 1], multiples of 16; ``snr_db``: ``[B]``.
    :output: ``[B, 2*channels, Hp/16, Wp/16]`` float."""

    def __init__(self, cfg: WITTPreset):
        super().__init__()
        dims, p = cfg.embed_dims, cfg.patch_size
        self.patch_embed = nn.Conv2d(3, dims[0], p, stride=p)
        self.embed_norm = nn.LayerNorm(dims[0])
        self.stages = nn.Sequential(*(
            _stage(dims[max(i - 1, 0)], dims[i], cfg.depths[i], cfg.num_heads[i], cfg.window_size,
                   cfg.mlp_ratio, downsample=i > 0) for i in range(STAGES)))
        self.norm = nn.LayerNorm(dims[-1])
        self.modulation = _modulation(dims[-1], cfg)
        self.head = nn.Linear(dims[-1], 2 * cfg.channels)

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        x = self.embed_norm(self.patch_embed(x).permute(0, 2, 3, 1))
        x = self.modulation(self.norm(self.stages(x)), snr_db)
        return self.head(x).permute(0, 3, 1, 2)


class WITTDecoder(nn.Module):
    """:input y: ``[B, 2*channels, h, w]`` zero-filled received planes (with ``mask_plane`` then the
    ``channels`` mask planes: ``[B, 3*channels, h, w]``); ``snr_db``: ``[B]``.
    :output: ``[B, 3, 16h, 16w]`` in [0, 1]."""

    def __init__(self, cfg: WITTPreset):
        super().__init__()
        dims = list(reversed(cfg.embed_dims))
        depths, heads = list(reversed(cfg.depths)), list(reversed(cfg.num_heads))
        self.head = nn.Linear(decoder_planes(cfg.channels, cfg.mask_plane), dims[0])
        self.modulation = _modulation(dims[0], cfg)
        self.stages = nn.ModuleList(
            _stage(dims[i], dims[i], depths[i], heads[i], cfg.window_size, cfg.mlp_ratio, downsample=False)
            for i in range(STAGES))
        # each stage ends by doubling the resolution; the last expansion undoes the patch embedding
        outs = dims[1:] + [3]
        self.expand = nn.ModuleList(PatchExpand(dims[i], outs[i]) for i in range(STAGES))

    def forward(self, y: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        x = self.modulation(self.head(y.permute(0, 2, 3, 1)), snr_db)
        for stage, expand in zip(self.stages, self.expand):
            x = expand(stage(x))
        return torch.sigmoid(x.permute(0, 3, 1, 2))


@register("codec", "witt")
class WITT(NeuralJSCC):
    """WITT (Yang et al., 2023): Swin-Transformer JSCC with SNR-adaptive channel modulation.

    :param budget: channel-use cap per image.
    :param preset: ``"small"`` (window 4, narrower stages) or ``"paper"`` (the paper's DIV2K model).
    :param weights: a ``.safetensors`` file written by ``semsim train``.
    :param meta: build on PyTorch's meta device.
    """

    display_name = "WITT"
    cost_s_per_mpixel = 6.0
    preset_type = WITTPreset
    decoder_input = ("decoder.head.weight", 1)
    latent_output = (("encoder.head.weight", 0), ("encoder.head.bias", 0))

    def _build(self, cfg: WITTPreset) -> None:
        if cfg.patch_size != 2:
            raise ConfigError(f"witt: patch_size must be 2 (WITT's; the decoder undoes it by one pixel shuffle), "
                              f"got {cfg.patch_size!r}")
        for key in ("embed_dims", "depths", "num_heads"):
            if len(getattr(cfg, key)) != STAGES:
                raise ConfigError(f"witt: {key} needs {STAGES} values (one per Swin stage), got {getattr(cfg, key)!r}")
        self.stride = cfg.patch_size * 2 ** (STAGES - 1)
        self.encoder = WITTEncoder(cfg)
        self.decoder = WITTDecoder(cfg)
        # as WITT's code: everything but the decoder's modulation (built after its init call)
        self.encoder.apply(_init_weights)
        for name, child in self.decoder.named_children():
            if name != "modulation":
                child.apply(_init_weights)


def _init_weights(m: nn.Module) -> None:
    """WITT's (and Swin's) initialisation of linear layers: truncated normal, std 0.02, zero bias."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


__all__ = ["WITT", "WITTEncoder", "WITTDecoder", "ChannelModulation", "PatchExpand", "SNRGate"]
