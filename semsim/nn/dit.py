"""A DiT-style conditional denoiser on a feature grid (Peebles & Xie, "Scalable Diffusion Models
with Transformers", ICCV 2023).

The network and the noise process live apart (:mod:`semsim.nn.diffusion` holds the latter). The
backbone is conditioned on one vector ``c: [B, width]``; the caller builds it, e.g. as the sum of a
:class:`SinusoidalEmbedder` of the diffusion time step and one of the SNR in dB, as DiT sums its
time-step and class embeddings.

Building blocks come from libraries: multi-head self-attention and the MLP from ``timm``, the
sinusoidal features from ``diffusers`` (the same formulas as DiT's ``TimestepEmbedder`` and its
MAE-style 2-D sin-cos positional embedding).

Example::

    >>> import torch
    >>> from semsim.nn.dit import DiT, SinusoidalEmbedder
    >>> net = DiT(in_channels=8, out_channels=4, width=32, depth=2, heads=2)
    >>> t_embed, snr_embed = SinusoidalEmbedder(32), SinusoidalEmbedder(32)
    >>> c = t_embed(torch.tensor([999.0, 10.0])) + snr_embed(torch.tensor([-5.0, 20.0]))
    >>> net(torch.randn(2, 8, 6, 10), c).shape
    torch.Size([2, 4, 6, 10])
"""
from __future__ import annotations

import functools

import torch
from torch import nn

#: DiT-XL/2, the paper's preset (Table 1 of Peebles & Xie): 28 blocks, 16 heads, width 1152, patch 2
DIT_XL_2 = {"width": 1152, "depth": 28, "heads": 16, "patch_size": 2}


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """adaLN modulation ``x * (1 + scale) + shift`` of tokens ``x: [B, N, D]`` by ``[B, D]`` vectors."""
    return x * (1 + scale.unsqueeze(1)) + shift.unsqueeze(1)


class SinusoidalEmbedder(nn.Module):
    """A real scalar per sample -> a ``width`` vector: sinusoidal features, then Linear-SiLU-Linear.

    DiT's ``TimestepEmbedder``: ``frequency_dim`` features ``[cos(v*w_k), sin(v*w_k)]`` with
    ``w_k = max_period**(-k / (frequency_dim/2))``, i.e. periods from ``2*pi`` to about
    ``2*pi*max_period`` in the input's own units, then an MLP.

    :param width: output size (the DiT width).
    :param frequency_dim: number of sinusoidal features (DiT: 256).
    :param max_period: longest period of the features, in the input's units.

    :input v: ``[B]`` float (or int), any real value in its natural units: a diffusion time step
        (``0 .. T-1``, not normalised) or an SNR in dB (negative values are fine).
    :output: ``[B, width]`` float32 (the MLP's dtype).
    """

    def __init__(self, width: int, frequency_dim: int = 256, max_period: float = 10000.0):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.max_period = max_period
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, width), nn.SiLU(), nn.Linear(width, width))
        for layer in (self.mlp[0], self.mlp[2]):
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    def features(self, v: torch.Tensor) -> torch.Tensor:
        """``[B]`` -> ``[B, frequency_dim]`` float32 sinusoidal features ``[cos(v*w_k), sin(v*w_k)]``."""
        from diffusers.models.embeddings import get_timestep_embedding

        if v.dim() != 1:
            raise ValueError(f"expected a [B] tensor, got shape {tuple(v.shape)}")
        # flip_sin_to_cos and no frequency shift reproduce DiT's timestep_embedding exactly
        return get_timestep_embedding(v.float(), self.frequency_dim, flip_sin_to_cos=True,
                                      downscale_freq_shift=0, max_period=self.max_period)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.features(v).to(self.mlp[0].weight.dtype))


def sincos_pos_embed_2d(dim: int, grid_h: int, grid_w: int, device: torch.device | str | None = None
                        ) -> torch.Tensor:
    """The standard 2-D sin-cos positional embedding of DiT and MAE, for any grid.

    Half of the channels encode the column index, half the row index, each as
    ``[sin(pos*w_k), cos(pos*w_k)]`` with ``w_k = 10000**(-k / (dim/4))``; positions are integer
    grid indices (not rescaled to the grid size).

    :param dim: embedding size, a multiple of 4.
    :param grid_h: number of token rows.
    :param grid_w: number of token columns.
    :returns: ``[grid_h*grid_w, dim]`` float32, rows in row-major ``(h, w)`` token order.
    """
    from diffusers.models.embeddings import get_2d_sincos_pos_embed_from_grid

    if dim % 4:
        raise ValueError(f"the 2-D sin-cos embedding needs dim divisible by 4, got {dim}")
    rows = torch.arange(grid_h, dtype=torch.float32, device=device)
    cols = torch.arange(grid_w, dtype=torch.float32, device=device)
    grid = torch.stack(torch.meshgrid(cols, rows, indexing="xy"))  # [2, grid_h, grid_w], columns first as MAE
    return get_2d_sincos_pos_embed_from_grid(dim, grid).float()


class DiTBlock(nn.Module):
    """One adaLN-Zero transformer block.

    ``x + gate_msa * Attn(modulate(LN(x), shift_msa, scale_msa))``, then the same for the MLP; the
    six modulation vectors come from ``SiLU -> Linear(width, 6*width)`` of the conditioning,
    zero-initialised so that the block starts as the identity.

    :param width: token size.
    :param heads: attention heads (``width`` must be divisible by it).
    :param mlp_ratio: MLP hidden size / ``width``.

    :input x: ``[B, N, width]`` float tokens.
    :input c: ``[B, width]`` float conditioning vector.
    :output: ``[B, N, width]``, same dtype as ``x``.
    """

    def __init__(self, width: int, heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        from timm.layers import Attention, Mlp

        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, num_heads=heads, qkv_bias=True)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = Mlp(in_features=width, hidden_features=int(width * mlp_ratio),
                       act_layer=functools.partial(nn.GELU, approximate="tanh"))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa.unsqueeze(1) * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        return x + gate_mlp.unsqueeze(1) * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class FinalLayer(nn.Module):
    """adaLN LayerNorm, then a linear map of each token to its ``patch_size**2 * out_channels`` values.

    :input x: ``[B, N, width]``; :input c: ``[B, width]``.
    :output: ``[B, N, patch_size**2 * out_channels]``.
    """

    def __init__(self, width: int, patch_size: int, out_channels: int):
        super().__init__()
        self.norm_final = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(width, patch_size * patch_size * out_channels)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


class DiT(nn.Module):
    """DiT backbone on a feature grid: patchify, sin-cos positions, ``depth`` adaLN-Zero blocks, unpatchify.

    Unlike the image DiT it holds no time-step or class embedder: the caller passes the
    conditioning vector ``c`` (see :class:`SinusoidalEmbedder`), and the grid size is free (the
    positional embedding is built for the actual grid and cached per grid and device). Initialised
    as DiT: xavier-uniform linears and patch projection, zero adaLN modulations and zero final
    linear, so the output is exactly zero at initialisation.

    The paper's preset is DiT-XL/2 (:data:`DIT_XL_2`): ``depth=28, heads=16, patch_size=2,
    width=1152``. Construction does no data-dependent work, so ``with torch.device("meta"):
    DiT(**DIT_XL_2, ...)`` counts its parameters without allocating them.

    :param in_channels: channels of the input grid.
    :param out_channels: channels of the output grid.
    :param width: token size (hidden size).
    :param depth: number of :class:`DiTBlock`.
    :param heads: attention heads.
    :param patch_size: side of the square patch that becomes one token.
    :param mlp_ratio: MLP hidden size / ``width``.

    :input x: ``[B, in_channels, H, W]`` float, ``H`` and ``W`` multiples of ``patch_size``.
    :input c: ``[B, width]`` float conditioning vector.
    :output: ``[B, out_channels, H, W]``, same dtype as the parameters.
    """

    def __init__(self, in_channels: int, out_channels: int, width: int, depth: int, heads: int,
                 patch_size: int = 2, mlp_ratio: float = 4.0):
        super().__init__()
        if width % 4:
            raise ValueError(f"width must be divisible by 4 for the 2-D sin-cos embedding, got {width}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.width, self.patch_size = width, patch_size
        self.x_embedder = nn.Conv2d(in_channels, width, kernel_size=patch_size, stride=patch_size)
        self.blocks = nn.ModuleList(DiTBlock(width, heads, mlp_ratio) for _ in range(depth))
        self.final_layer = FinalLayer(width, patch_size, out_channels)
        self._pos_embed_cache: dict[tuple[int, int, torch.device], torch.Tensor] = {}
        self.initialize_weights()

    def initialize_weights(self) -> None:
        """DiT's initialisation (works on the meta device too)."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        # the patch projection is initialised like a linear layer on the flattened patch
        nn.init.xavier_uniform_(self.x_embedder.weight.view(self.width, -1))
        nn.init.zeros_(self.x_embedder.bias)
        for layer in [block.adaLN_modulation[-1] for block in self.blocks] + [
                self.final_layer.adaLN_modulation[-1], self.final_layer.linear]:
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def pos_embed(self, grid_h: int, grid_w: int, device: torch.device) -> torch.Tensor:
        """``[grid_h*grid_w, width]`` float32 positional embedding, cached per grid and device."""
        key = (grid_h, grid_w, torch.device(device))
        if key not in self._pos_embed_cache:
            # a normal tensor even when first built under inference_mode, so training can reuse it
            with torch.inference_mode(False):
                self._pos_embed_cache[key] = sincos_pos_embed_2d(self.width, grid_h, grid_w, device=device)
        return self._pos_embed_cache[key]

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f"grid {h}x{w} is not divisible by patch_size {p}; pad H and W to multiples of {p}")
        gh, gw = h // p, w // p
        tokens = self.x_embedder(x).flatten(2).transpose(1, 2)  # [B, gh*gw, width]
        tokens = tokens + self.pos_embed(gh, gw, tokens.device).to(tokens.dtype)
        for block in self.blocks:
            tokens = block(tokens, c)
        out = self.final_layer(tokens, c)  # [B, gh*gw, p*p*out_channels]
        out = out.reshape(b, gh, gw, p, p, self.out_channels)
        return torch.einsum("nhwpqc->nchpwq", out).reshape(b, self.out_channels, h, w)
