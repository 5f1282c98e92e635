"""Channels: Sionna 2.x blocks behind one small interface.

Every channel takes complex symbols ``x`` of shape ``[B, N]`` (``torch.complex64``), one row per
image, and an average SNR in dB (a scalar or one value per image, ``[B]``), and returns the
received symbols plus a :class:`ChannelInfo` holding what a receiver may know.

Conventions (the same at every interface of semsim):

- **SNR is Es/N0 per complex channel symbol**, in dB; the noise variance per complex symbol is
  ``no = 10**(-snr_db/10)`` (:func:`snr_db_to_no`), drawn by Sionna's :class:`~sionna.phy.channel.AWGN`
  with variance ``no/2`` per real dimension.
- **Unit average power per transmitted image.** :meth:`Channel.forward` normalises each row of
  ``x`` to mean power 1 with :func:`normalize_power`; this is the only place in semsim where the
  transmit power is normalised, so every method meets the same power constraint.
- Fading channels have unit average gain, ``E|h|^2 = 1``, so the average received SNR equals the
  requested one. The transmitter knows only that average; it never sees ``h``.
- Randomness comes from Sionna's generator (``sionna.phy.config.torch_rng``); reseed it with
  :func:`semsim.config.seed_everything`.
- Every operation is a differentiable torch op, so learned codecs train through the channel.

Registered names: ``awgn``, ``rayleigh``, ``rician`` here; ``tdl-a`` … ``tdl-e`` and ``cdl-a`` … ``cdl-e`` in
:mod:`semsim.channels_ofdm` (3GPP TR 38.901 models over 5G NR OFDM).

Example::

    >>> import torch
    >>> from semsim.channels import build_channel
    >>> ch = build_channel({"name": "rayleigh", "block_length": 64})
    >>> x = torch.randn(2, 256, dtype=torch.complex64)
    >>> y, info = ch(x, snr_db=10.0)
    >>> y.shape, info.no.shape
    (torch.Size([2, 256]), torch.Size([2, 256]))
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch

from .errors import ConfigError, choices
from .registry import build, register

SNR_RANGE_DB = (-30.0, 60.0)
#: valid range of the Rician K factor, dB
K_DB_RANGE = (-50.0, 50.0)


def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_number(value: Any, what: str, lo: float, hi: float) -> float:
    """``value`` as a float if it is a finite number in ``[lo, hi]``; :class:`ConfigError` otherwise."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    try:
        ok = ok and math.isfinite(float(value)) and lo <= float(value) <= hi
    except OverflowError:
        ok = False
    if not ok:
        raise ConfigError(f"{what} must be a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


@dataclass
class ChannelInfo:
    """What the receiver may know after the channel.

    :ivar no: ``[B, N]`` float32, linear. Noise variance per delivered symbol: ``no`` on an
        unequalised output, the effective (post-equalisation) noise variance after equalisation.
    :ivar h: ``[B, N]`` complex64 or ``None``. Channel state per delivered symbol as the receiver
        knows it (perfect or estimated); ``None`` where the channel gives no CSI (AWGN, or a
        fading channel configured without CSI).
    :ivar equalized: whether ``y`` has been equalised (``y ≈ x + noise``).
    :ivar overhead: channel uses per image spent besides the ``N`` data symbols (OFDM pilots,
        cyclic prefix, unused resource elements of the last slot); 0 for flat channels.
    """

    no: torch.Tensor
    h: torch.Tensor | None
    equalized: bool
    overhead: int = 0


def snr_db_to_no(snr_db: float | torch.Tensor) -> torch.Tensor:
    """Noise variance per complex symbol for unit-power symbols: ``no = 10**(-snr_db/10)`` (linear)."""
    return torch.pow(10.0, -torch.as_tensor(snr_db, dtype=torch.float32) / 10.0)


def snr_vector(snr_db: float | torch.Tensor, batch: int, device: torch.device | str | None = None) -> torch.Tensor:
    """``snr_db`` (a number, or one value per image) as a ``[batch]`` float32 tensor in dB."""
    snr = torch.as_tensor(snr_db, dtype=torch.float32, device=device)
    return snr.reshape(()).expand(batch) if snr.numel() == 1 else snr.reshape(batch)


def normalize_power(x: torch.Tensor) -> torch.Tensor:
    """Scale each row of ``x`` (``[B, N]`` complex) to mean power ``mean(|x|^2) = 1``.

    The one place in semsim where transmit power is normalised (per image, never per batch).
    """
    power = x.real.square().add(x.imag.square()).mean(dim=-1, keepdim=True)
    return x / torch.sqrt(power.clamp_min(1e-20)).to(x.dtype)


def check_snr_db(snr_db: float | torch.Tensor) -> None:
    """Raise :class:`ConfigError` unless every SNR lies in :data:`SNR_RANGE_DB`."""
    t = torch.as_tensor(snr_db, dtype=torch.float32)
    lo, hi = SNR_RANGE_DB
    if not torch.isfinite(t).all() or (t < lo).any() or (t > hi).any():
        raise ConfigError(f"SNR {snr_db} dB is outside the valid range [{lo:g}, {hi:g}] dB")


class Channel(torch.nn.Module):
    """Base class: normalise power, draw the channel, add Sionna AWGN, (optionally) equalise.

    Subclasses implement :meth:`propagate` and, for capacity bounds, :meth:`sample_gains`.

    :input x: ``[B, N]`` complex64, one row per image (any scale: it is normalised here).
    :input snr_db: float or ``[B]`` float, average Es/N0 in dB.
    :output y: ``[B, N]`` complex64, received (or equalised) symbols.
    :output info: :class:`ChannelInfo`.
    """

    name: str = "channel"

    def forward(self, x: torch.Tensor, snr_db: float | torch.Tensor) -> tuple[torch.Tensor, ChannelInfo]:
        if x.dim() != 2 or not x.is_complex():
            raise ValueError(f"channel input must be complex [B, N], got {tuple(x.shape)} {x.dtype}")
        b = x.shape[0]
        snr = snr_vector(snr_db, b, x.device)
        x = normalize_power(x.to(torch.complex64))
        return self.propagate(x, snr_db_to_no(snr).to(x.device), snr)

    def propagate(self, x: torch.Tensor, no: torch.Tensor, snr_db: torch.Tensor):
        """``x``: ``[B, N]`` complex64 at unit power; ``no``: ``[B]`` float32 linear."""
        raise NotImplementedError

    def overhead(self, num_symbols: int) -> int:
        """Channel uses spent per image besides ``num_symbols`` data symbols."""
        return 0

    def sample_gains(self, num: int) -> torch.Tensor:
        """``[num]`` complex64 channel gains seen by data symbols (for ergodic capacity)."""
        return torch.ones(num, dtype=torch.complex64)

    def capacity(self, snr_db: float, num_samples: int = 200_000) -> float:
        """Ergodic capacity with receiver CSI, bits per complex channel use.

        ``E[log2(1 + |h|^2 snr)]``, estimated from ``num_samples`` gains drawn with a fixed seed
        (exact ``log2(1+snr)`` for AWGN).
        """
        snr = 10.0 ** (snr_db / 10.0)
        g = self.sample_gains(num_samples)
        if torch.all(g == 1):
            return math.log2(1.0 + snr)
        return float(torch.log2(1.0 + g.abs().square().double() * snr).mean())

    def describe(self) -> dict[str, Any]:
        """Configuration as plain data (for the CSV's provenance)."""
        return {"name": self.name}


def _sionna_awgn():
    from sionna.phy.channel import AWGN

    return AWGN()


@register("channel", "awgn")
class AWGNChannel(Channel):
    """Additive white Gaussian noise: ``y = x + n``, ``n ~ CN(0, no)``. No CSI is reported."""

    name = "awgn"

    def __init__(self):
        super().__init__()
        self._awgn = _sionna_awgn()

    def propagate(self, x, no, snr_db):
        y = self._awgn(x, no.unsqueeze(-1))
        return y, ChannelInfo(no=no.unsqueeze(-1).expand(x.shape).contiguous(), h=None, equalized=False)


class _FlatFading(Channel):
    """Block flat fading ``y = h x + n``: one complex gain per block of ``block_length`` symbols.

    :param block_length: symbols per fading block; ``None`` (default) gives one block per image.
    :param csi: ``True`` (default): the receiver knows ``h`` perfectly. ``False``: no CSI.
    :param equalize: ``True`` (default): zero-forcing with perfect CSI, ``y/h``; the effective
        noise variance is then ``no/|h|^2``. Requires ``csi``.
    """

    def __init__(self, block_length: int | None = None, csi: bool = True, equalize: bool = True):
        super().__init__()
        if block_length is not None and (not is_int(block_length) or block_length < 1):
            raise ConfigError(f"{self.name}: block_length must be a positive integer or null, got {block_length!r}")
        if not isinstance(csi, bool) or not isinstance(equalize, bool):
            raise ConfigError(f"{self.name}: csi and equalize must be true or false")
        if equalize and not csi:
            raise ConfigError(f"{self.name}: equalize: true needs csi: true (equalisation uses perfect CSI)")
        self.block_length, self.csi, self.equalize = block_length, csi, equalize
        from sionna.phy.channel import GenerateFlatFadingChannel

        self._gen = GenerateFlatFadingChannel(num_tx_ant=1, num_rx_ant=1)
        self._awgn = _sionna_awgn()

    def _draw(self, num: int) -> torch.Tensor:
        """``[num]`` complex64 gains with ``E|h|^2 = 1``."""
        return self._gen(num).reshape(num)

    def sample_gains(self, num):
        from sionna.phy import config as sionna_config

        state = sionna_config.torch_rng().get_state()
        sionna_config.torch_rng().manual_seed(1234)
        try:
            return self._draw(num).cpu()
        finally:
            sionna_config.torch_rng().set_state(state)

    def propagate(self, x, no, snr_db):
        b, n = x.shape
        length = n if self.block_length is None else self.block_length
        blocks = -(-n // length)
        h = self._draw(b * blocks).reshape(b, blocks).to(x.device)
        h = h.repeat_interleave(length, dim=1)[:, :n]
        y = self._awgn(h * x, no.unsqueeze(-1))
        no_sym = no.unsqueeze(-1).expand(b, n)
        if self.equalize:
            return y / h, ChannelInfo(no=no_sym / h.abs().square(), h=h, equalized=True)
        return y, ChannelInfo(no=no_sym.contiguous(), h=h if self.csi else None,
                              equalized=False)

    def describe(self):
        return {"name": self.name, "block_length": self.block_length, "csi": self.csi,
                "equalize": self.equalize}


@register("channel", "rayleigh")
class RayleighChannel(_FlatFading):
    """Rayleigh block fading: ``h ~ CN(0, 1)`` from Sionna's ``GenerateFlatFadingChannel``."""

    name = "rayleigh"


@register("channel", "rician")
class RicianChannel(_FlatFading):
    """Rician block fading with K factor ``k_db`` (dB), ``E|h|^2 = 1``.

    Sionna has no flat Rician channel, so this wraps its flat-fading generator:
    ``h = sqrt(K/(K+1)) e^{j phi} + sqrt(1/(K+1)) g`` with ``g ~ CN(0,1)`` from
    ``GenerateFlatFadingChannel`` and a line-of-sight phase ``phi`` uniform per block.

    :param k_db: Rician K factor in dB (ratio of line-of-sight to scattered power), in
        :data:`K_DB_RANGE` (-50 to 50 dB). Default 6 dB.
    """

    name = "rician"

    def __init__(self, k_db: float = 6.0, block_length: int | None = None, csi: bool = True,
                 equalize: bool = True):
        super().__init__(block_length=block_length, csi=csi, equalize=equalize)
        self.k_db = check_number(k_db, "rician: k_db (dB)", *K_DB_RANGE)

    def _draw(self, num):
        from sionna.phy import config as sionna_config

        k = 10.0 ** (self.k_db / 10.0)
        g = super()._draw(num)
        phi = 2 * math.pi * torch.rand(num, generator=sionna_config.torch_rng(), device=g.device)
        los = torch.polar(torch.ones_like(phi), phi)
        return (math.sqrt(k / (k + 1)) * los + math.sqrt(1 / (k + 1)) * g).to(torch.complex64)

    def describe(self):
        return {**super().describe(), "k_db": self.k_db}



def build_channel(spec: str | Mapping[str, Any]) -> Channel:
    """Build a registered channel from a name or ``{"name": ..., **options}``."""
    return build("channel", spec)
