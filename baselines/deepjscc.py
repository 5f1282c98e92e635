"""Deep JSCC (Bourtsoulatze, Kurka and Gündüz, 2019) as codec ``deepjscc``, and the plumbing the
three neural reconstruction baselines share (:class:`NeuralJSCC`).

Data flow (shapes for an ``H x W`` image reflect-padded to ``Hp x Wp``, multiples of the latent
stride ``s``; ``C`` = ``channels`` complex symbols per latent position)::

    image [B,3,H,W] ──pad──▶ [B,3,Hp,Wp] ──encoder(·, snr)──▶ z [B,2C,Hp/s,Wp/s] real
        ──▶ symbols [B,N] complex, channel-major, N = min(budget cap(H, W), C·Hp/s·Wp/s)
    channel (power normalised per image there, y = h x + n, zero-forcing by default) ──▶ y [B,N]
    y ──zero-fill──▶ [B,2C,Hp/s,Wp/s] (the y planes of semsim.codec.received_planes)
      ──decoder(·, snr)──▶ image [B,3,Hp,Wp] in [0,1] (sigmoid) ──crop──▶ [B,3,H,W]

Deep JSCC's encoder is five convolutions with PReLU (strides 2, 2, 1, 1, 1: latent stride 4, as in
the paper), its decoder five transposed convolutions with PReLU and a sigmoid output; it does not
see the SNR. Presets live in ``reconstruction_presets.yaml``; ``docs/baselines.md`` says where each
method follows its paper and where it deviates.

Example::

    >>> import torch
    >>> from semsim.codec import Budget
    >>> from semsim.channels import build_channel
    >>> codec = DeepJSCC(Budget("cbr", 1 / 16), preset="paper").eval()
    >>> with torch.no_grad():
    ...     t = codec.transmit(torch.rand(1, 3, 40, 56), build_channel("awgn"), torch.tensor([10.0]))
    >>> t.output.shape, t.channel_uses
    (torch.Size([1, 3, 40, 56]), [420])
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from semsim.channels import snr_vector
from semsim.budget import parse_ratio
from semsim.codec import (Budget, CodecOutput, LearnedCodec, Task, latent_to_symbols, received_planes,
                          select_planes)
from semsim.errors import ConfigError
from semsim.registry import register
from semsim.semantic.source_kb import pad_to_multiple

PRESETS_FILE = Path(__file__).with_name("reconstruction_presets.yaml")


@dataclass(frozen=True)
class DeepJSCCPreset:
    """A ``deepjscc`` preset (``reconstruction_presets.yaml``): encoder conv widths of layers 1-4,
    the strides of the five layers, the kernel size, the complex symbols per latent position and
    whether the decoder also gets the mask plane (which latent symbols were sent)."""

    widths: list[int]
    strides: list[int]
    kernel_size: int
    channels: int
    mask_plane: bool = field(default=False, kw_only=True)
#: the SNR in dB is divided by this before it conditions a network (the scale of semsim's SNR plane)
SNR_SCALE_DB = 20.0


class NeuralJSCC(LearnedCodec):
    """A learned analog JSCC baseline for reconstruction: what Deep JSCC, ADJSCC and WITT share.

    A subclass sets ``method`` (its registry name and key in the presets file) and ``label``, and
    implements :meth:`_build`, which sets ``self.encoder`` (``(x [B,3,Hp,Wp], snr_db [B]) → z
    [B,2C,Hp/s,Wp/s]``), ``self.decoder`` (``(y [B,2C,Hp/s,Wp/s], snr_db [B]) → [B,3,Hp,Wp]`` in
    [0, 1]) and ``self.stride`` (``s``).

    The receiver uses the zero-filled ``y`` planes of :func:`semsim.codec.received_planes` (the
    equalised ``y / h`` on fading channels with the default ``equalize: true``), with a preset's
    ``mask_plane`` also the mask of sent symbols (the ``small`` presets: a smaller budget's unsent
    zeros are then not mistaken for received ones), and, where the method's paper feeds it, the
    average SNR; no ``h`` or noise planes, as in the papers.

    Weights saved before the mask plane existed load into a preset with one: the decoder's
    weights over the mask planes start at zero, so they compute what they did
    (:meth:`upgrade_weights`).

    :param budget: channel-use cap per image.
    :param preset: ``"small"`` or ``"paper"`` (``reconstruction_presets.yaml``).
    :param weights: a ``.safetensors`` file written by ``semsim train`` (checked against the preset).
    :param meta: build on PyTorch's meta device (parameter counting only; nothing is allocated).
    """

    task = Task.RECONSTRUCTION
    presets_file = PRESETS_FILE
    preset_type = DeepJSCCPreset
    #: state-dict key of the decoder's first-layer weights and their dimension over the input
    #: planes (``2C`` received, then ``C`` mask planes)
    decoder_input: ClassVar[tuple[str, int]] = ("decoder.net.0.weight", 0)
    #: state-dict keys and dimensions of the encoder's per-channel tensors over the ``2C`` latent
    #: channels (real then imaginary); empty where dropping latent channels would change the others
    latent_output: ClassVar[tuple[tuple[str, int], ...]] = ()

    def __init__(self, budget: Budget, preset: str = "small", weights: str | None = None, meta: bool = False):
        super().__init__(budget, preset=preset, weights=weights, meta=meta)

    # --- contract -------------------------------------------------------------------------------
    @property
    def channels(self) -> int:
        """Complex symbols per latent position."""
        return int(self.cfg["channels"])

    def latent_grid(self, height: int, width: int) -> tuple[int, int]:
        """The latent grid ``(Hp/s, Wp/s)`` of an ``height x width`` image."""
        return math.ceil(height / self.stride), math.ceil(width / self.stride)

    def latent_symbols(self, height: int, width: int) -> int:
        """Complex symbols the latent holds for an ``height x width`` image: ``C * Hp/s * Wp/s``."""
        gh, gw = self.latent_grid(height, width)
        return self.channels * gh * gw

    def symbol_count(self, height: int, width: int) -> int:
        """Complex symbols sent for an ``height x width`` image: ``min(cap, C * Hp/s * Wp/s)``, the cap
        taken at the original size (padding never raises it)."""
        return min(self.budget.channel_uses(height, width), self.latent_symbols(height, width))

    def encode(self, images: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        snr = snr_vector(snr_db, images.shape[0], images.device)
        return self._encode(images, snr, self.symbol_count(*images.shape[-2:]))

    def decode(self, received, info, snr_db, image_size):
        return self._decode(received, info, snr_vector(snr_db, received.shape[0], received.device), image_size)

    # --- the pieces -----------------------------------------------------------------------------
    def _encode(self, images: torch.Tensor, snr_db: torch.Tensor, n: int) -> torch.Tensor:
        """``[B, 3, H, W]`` in [0, 1] → ``[B, n]`` complex64, the first ``n`` latent symbols."""
        x, _ = pad_to_multiple(images, self.stride)
        return latent_to_symbols(self.encoder(x, snr_db), n)

    def _decode(self, received: torch.Tensor, info, snr_db: torch.Tensor, image_size) -> torch.Tensor:
        height, width = image_size
        gh, gw = self.latent_grid(height, width)
        planes = received_planes(received, info, snr_db, self.channels, gh, gw)
        groups = ("y_real", "y_imag", "mask") if self.arch.mask_plane else ("y_real", "y_imag")
        return self.decoder(select_planes(planes, self.channels, *groups), snr_db)[..., :height, :width]

    # --- weights of an older semsim -------------------------------------------------------------
    def upgrade_weights(self, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
                        ) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
        """Older weights of this preset made to fit it, computing what they did:

        - without a ``mask_plane`` key: saved before the mask plane, so ``false``; where the preset
          has one, the decoder's first layer gets zero weights over the ``C`` mask planes;
        - with more ``channels`` than the preset (where :attr:`latent_output` allows it): the
          latent channels beyond the preset's are dropped from the encoder's last layer and the
          decoder's first. Only channels the weights were never trained to send may go: the file's
          budget and symbol policy (``budget``, ``symbols.high``, ``crop`` in its metadata) must
          fit the preset's channels, else :class:`ConfigError` says so.

        Anything else that differs is left for :func:`semsim.weights.load_weights` to report.
        """
        config, tensors = dict(meta["config"]), dict(tensors)
        own = json.loads(json.dumps(self.config()))  # tuples → lists, as the file stores them
        def others(d: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in d.items() if k not in ("mask_plane", "channels")}

        if others(config) != others(own):
            return meta["config"], tensors
        if "mask_plane" in own and "mask_plane" not in config:
            config["mask_plane"] = False
        c, key, dim = int(config["channels"]), *self.decoder_input
        if self.arch.mask_plane and not config.get("mask_plane"):
            w = tensors[key]
            shape = list(w.shape)
            shape[dim] = c
            tensors[key] = torch.cat([w, w.new_zeros(shape)], dim)
            config["mask_plane"] = True
        k = self.channels
        if c > k and self.latent_output:
            self._check_unsent(meta, k)
            keep = torch.tensor([*range(k), *range(c, c + k)])
            for name, d in self.latent_output:
                tensors[name] = tensors[name].index_select(d, keep)
            if config.get("mask_plane"):
                keep = torch.cat([keep, torch.arange(2 * c, 2 * c + k)])
            tensors[key] = tensors[key].index_select(dim, keep)
            config["channels"] = k
        return config, tensors

    def _check_unsent(self, meta: dict[str, Any], k: int) -> None:
        """Refuse to drop latent channels that training may have sent (see :meth:`upgrade_weights`)."""
        budget, crop = str(meta.get("budget", "")), meta.get("crop")
        high = float((meta.get("symbols") or {}).get("high", 1.0))
        kind, _, value = budget.partition("=")
        if kind not in Budget.KINDS or not isinstance(crop, int):
            raise ConfigError(f"{self.method}: these weights hold {meta['config']['channels']} latent channels and "
                              f"the preset {k}; their metadata does not say which were trained (no budget or "
                              f"crop), so none can be dropped: use a preset with channels: "
                              f"{meta['config']['channels']}")
        cap = Budget(kind, parse_ratio(value)).channel_uses(crop, crop)
        fits = k * math.prod(self.latent_grid(crop, crop))
        if high * cap > fits + 0.5:
            raise ConfigError(f"{self.method}: these weights were trained to send up to {high * cap:.0f} symbols "
                              f"per {crop}-px crop ({budget}, symbols high {high:g}), more than the preset's "
                              f"{k} latent channels hold ({fits}); use a preset with channels: "
                              f"{meta['config']['channels']}")

    # --- training -------------------------------------------------------------------------------
    def forward(self, task: Task, images: torch.Tensor, channel, snr_db: torch.Tensor) -> CodecOutput:
        """One training pass through ``channel`` (:meth:`semsim.codec.Codec.forward`); the loss is the
        MSE on the [0, 1] pixel scale (the papers'), :func:`semsim.nn.losses.training_loss`.

        The symbol count follows :meth:`semsim.codec.LearnedCodec.training_symbols`, like every learned codec.
        """
        if Task(task) is not Task.RECONSTRUCTION:
            raise ConfigError(f"method {self.method!r} trains reconstruction only, not {Task(task).value!r}")
        b, _, height, width = images.shape
        snr = snr_vector(snr_db, b, images.device)
        n = self.training_symbols(height, width, self.latent_symbols(height, width))
        y, info = channel(self._encode(images, snr, n), snr)
        out = self._decode(y, info, snr, (height, width))
        return CodecOutput(output=out.detach(), prediction=out, target=images)


def init_conv(m: nn.Module) -> None:
    """He initialisation for PReLU at its initial slope 0.25 (He et al., 2015), zero biases: the
    papers name none, and PyTorch's default scale shrinks the signal through five layers (slower
    early training)."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.kaiming_normal_(m.weight, a=0.25)
        nn.init.zeros_(m.bias)


def decoder_planes(channels: int, mask_plane: bool) -> int:
    """Real input planes of a decoder over ``channels`` complex latent channels: ``2C`` received
    (real, imaginary), plus ``C`` mask planes with ``mask_plane``."""
    return (3 if mask_plane else 2) * channels


def check_strides(strides: list[int]) -> int:
    """The latent stride ``prod(strides)`` of five strides of 1 or 2; :class:`ConfigError` otherwise."""
    if len(strides) != 5 or any(s not in (1, 2) for s in strides):
        raise ConfigError(f"strides must be five values of 1 or 2, got {strides!r}")
    return math.prod(strides)


def conv(cin: int, cout: int, kernel_size: int, stride: int) -> nn.Conv2d:
    """``kernel_size`` 'same' convolution; ``stride`` 2 halves an even size exactly."""
    return nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2)


def deconv(cin: int, cout: int, kernel_size: int, stride: int) -> nn.ConvTranspose2d:
    """Transposed convolution; ``stride`` 2 doubles the size exactly."""
    return nn.ConvTranspose2d(cin, cout, kernel_size, stride=stride, padding=kernel_size // 2,
                              output_padding=stride - 1)


class DeepJSCCEncoder(nn.Module):
    """Five convolutions, each followed by a per-channel PReLU (the last one too, as in the paper).

    :input x: ``[B, 3, Hp, Wp]`` float in [0, 1], ``Hp, Wp`` multiples of ``prod(strides)``.
    :output: ``[B, 2*channels, Hp/s, Wp/s]`` float (any scale; the channel normalises power).
    """

    def __init__(self, widths: list[int], strides: list[int], kernel_size: int, channels: int):
        super().__init__()
        dims = [3, *widths, 2 * channels]
        layers = []
        for cin, cout, s in zip(dims[:-1], dims[1:], strides):
            layers += [conv(cin, cout, kernel_size, s), nn.PReLU(cout)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, snr_db: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x)


class DeepJSCCDecoder(nn.Module):
    """Five transposed convolutions mirroring the encoder: PReLU after the first four, a sigmoid last.

    :input y: ``[B, 2*channels, h, w]`` the zero-filled received symbols (real, imaginary planes),
        then with ``mask_plane`` the ``channels`` mask planes (1 where sent): ``[B, 3*channels, h, w]``.
    :output: ``[B, 3, h*s, w*s]`` float in [0, 1].
    """

    def __init__(self, widths: list[int], strides: list[int], kernel_size: int, channels: int,
                 mask_plane: bool = False):
        super().__init__()
        dims = [decoder_planes(channels, mask_plane), *reversed(widths), 3]
        layers = []
        for i, (cin, cout, s) in enumerate(zip(dims[:-1], dims[1:], reversed(strides))):
            layers += [deconv(cin, cout, kernel_size, s), nn.PReLU(cout) if i < 4 else nn.Sigmoid()]
        self.net = nn.Sequential(*layers)

    def forward(self, y: torch.Tensor, snr_db: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(y)


@register("codec", "deepjscc")
class DeepJSCC(NeuralJSCC):
    """Deep JSCC (Bourtsoulatze et al., 2019): a convolutional autoencoder trained through the channel.

    :param budget: channel-use cap per image.
    :param preset: ``"small"`` (widened to the paper system's size) or ``"paper"`` (the paper's widths).
    :param weights: a ``.safetensors`` file written by ``semsim train``.
    :param meta: build on PyTorch's meta device.
    """

    display_name = "Deep JSCC"
    cost_s_per_mpixel = 3.5
    # the last conv and its per-channel PReLU: dropping a latent channel leaves the others as they were
    latent_output = (("encoder.net.8.weight", 0), ("encoder.net.8.bias", 0), ("encoder.net.9.weight", 0))

    def _build(self, cfg: DeepJSCCPreset) -> None:
        self.stride = check_strides(cfg.strides)
        args = (cfg.widths, cfg.strides, cfg.kernel_size, cfg.channels)
        self.encoder = DeepJSCCEncoder(*args)
        self.decoder = DeepJSCCDecoder(*args, mask_plane=cfg.mask_plane)
        self.apply(init_conv)


__all__ = ["DeepJSCC", "DeepJSCCEncoder", "DeepJSCCDecoder", "NeuralJSCC", "SNR_SCALE_DB", "check_strides",
           "decoder_planes"]
