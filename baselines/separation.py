"""Separate source and channel coding: JPEG / WebP / AVIF over 5G LDPC + QAM, and its capacity bound.

Registered codecs:

- ``jpeg+ldpc``, ``webp+ldpc``, ``avif+ldpc`` (:class:`SeparationCodec`): the image is compressed
  by Pillow at the highest quality whose bitstream fits the budget's information bits at the chosen
  MCS, carried by :class:`~semsim.digital.DigitalLink` (Sionna's LDPC and QAM) through the channel,
  decoded and decompressed. Sweep axis: ``mcs``.
- ``jpeg+capacity``, ``webp+capacity``, ``avif+capacity`` (:class:`CapacityCodec`): the ideal bound,
  the source coder at the highest quality fitting ``floor(N_max C)`` bits, ``C`` the channel's
  (ergodic) capacity, delivered without errors.

Side information assumed known at the receiver out of band, like the image size: the MCS, the
bitstream length in bits, the resolution scale and (for the bound) nothing else. The bitstream
itself carries the quality.

Options that make the receiver survive what a real link does (``docs/baselines.md`` has their
measured effect):

- ``scaling`` (rate control over resolution, :func:`~baselines.source_coding.fit_scaled`): the
  image may be downscaled before coding and is upscaled (bicubic) at the receiver; ``best``
  (default) whenever a smaller scale decodes better, ``fallback`` only when no quality fits at
  full size, ``off`` never. The ``scale`` is recorded per image.
- ``restart_rows`` (JPEG only): a restart marker every that many MCU rows (default: 1 for JPEG,
  about 0.3 % more bits; 0: none).
  With ``conceal`` (default ``True``) the receiver drops exactly the restart intervals whose bytes
  touch an LDPC codeword that failed its parity checks and fills them from their neighbours
  (:mod:`baselines.jpeg_resilience`); without it Pillow decodes the received stream as it is.

When the decoded bitstream cannot be decompressed (Pillow raises, the image has the wrong size or
mode, or with concealment the JPEG header lies in a failed codeword), the receiver outputs
:data:`FALLBACK_VALUE` (mid-grey) and the row is ``failed``. A corrupted stream that still
decompresses is kept as it is: that is what a receiver would show. ``codewords_failed`` counts the
codewords whose parity checks fail after decoding.

Example::

    >>> import torch
    >>> from semsim.codec import Budget
    >>> from semsim.channels import build_channel
    >>> from semsim.registry import build
    >>> codec = build("codec", "jpeg+ldpc", budget=Budget("cbr", 1/16)).with_axes(mcs="16qam-1/2")
    >>> ramp = torch.linspace(0, 1, 192).expand(1, 3, 128, 192)  # compressible, unlike noise
    >>> t = codec.transmit(ramp, build_channel("awgn"), 20.0)
    >>> t.output.shape, t.failed, t.extra["mcs"]
    (torch.Size([1, 3, 128, 192]), [False], ['16qam-1/2'])
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch

from semsim.codec import Budget, Codec, Transmission
from semsim.digital import MCS_TABLE, DigitalLink, bits_to_bytes, bytes_to_bits, check_link, parse_mcs
from semsim.errors import ConfigError, choices
from semsim.metrics import block_errors
from semsim.registry import register

from .concealment import trusted_bytes
from .jpeg_resilience import JpegStructureError, decode_concealed
from .source_coding import (MIN_SIDE, SCALES, SOURCE_CODERS, SOURCE_LABELS, FitCache, SourceCoder, SourceDecodeError,
                            check_scaling, from_uint8, scaled_size, source_coder, to_uint8, upscale)

#: The receiver's output when the bitstream cannot be decoded: a mid-grey image.
FALLBACK_VALUE = 0.5


def _snr_list(snr_db: float | torch.Tensor, b: int) -> list[float]:
    t = torch.as_tensor(snr_db, dtype=torch.float32).flatten()
    if t.numel() == 1:
        return [float(t)] * b
    if t.numel() != b:
        raise ValueError(f"snr_db has {t.numel()} values for a batch of {b} images")
    return [float(v) for v in t]


def _fallback(h: int, w: int) -> torch.Tensor:
    return torch.full((3, h, w), FALLBACK_VALUE)


@dataclass
class Packet:
    """One image's digital transmission, as the transmitter built it.

    ``num_bits``, ``mcs``, ``scale`` and the image size are the out-of-band header the receiver
    knows; ``info_bits`` are kept only so the simulation can count block errors.

    :ivar info_bits: ``[C, k]`` float32 0/1, the bitstream then random padding in the last codeword.
    :ivar symbols: ``[1, C n/m]`` complex64.
    :ivar size: ``(H, W)`` of the image; the bitstream codes ``scaled_size(size, scale)``.
    """

    mcs: str
    quality: int | None
    num_bits: int
    info_bits: torch.Tensor | None
    symbols: torch.Tensor
    size: tuple[int, int]
    scale: float = math.nan

    @property
    def coded_size(self) -> tuple[int, int]:
        """``(h, w)`` of the coded (possibly downscaled) image."""
        return scaled_size(self.size, self.scale) if self.scale < 1 else self.size


def check_restart(source: str, restart_rows: int | None, conceal: bool) -> int:
    """``restart_rows`` checked (a non-negative integer, positive only for JPEG; ``None``: 1 for
    JPEG, else 0); :class:`ConfigError` unless it and ``conceal`` (a bool) are valid."""
    if restart_rows is None:
        restart_rows = 1 if source == "jpeg" else 0
    if isinstance(restart_rows, bool) or not isinstance(restart_rows, int) or restart_rows < 0:
        raise ConfigError(f"restart_rows must be a non-negative integer, got {restart_rows!r}")
    if restart_rows and source != "jpeg":
        raise ConfigError(f"restart_rows needs the JPEG source coder (restart markers are JPEG's), got {source!r}")
    if not isinstance(conceal, bool):
        raise ConfigError(f"conceal must be true or false, got {conceal!r}")
    return restart_rows


def with_restart_markers(coder: SourceCoder, restart_rows: int) -> SourceCoder:
    """``coder`` writing a JPEG restart marker every ``restart_rows`` MCU rows (0: ``coder``)."""
    if not restart_rows:
        return coder
    return replace(coder, options={**coder.options, "restart_marker_rows": restart_rows})


class SeparationCodec(Codec):
    """Pillow source coder + Sionna 5G LDPC + QAM (``jpeg+ldpc``, ``webp+ldpc``, ``avif+ldpc``).

    For an ``H x W`` image the budget allows ``N_max`` channel uses, i.e.
    ``C_max = floor(N_max m / n)`` codewords and ``C_max k`` information bits. Rate control picks
    the highest quality fitting those bits (and, with ``scaling``, the resolution); only the
    ``C = ceil(bits / k)`` codewords needed are sent (``C n / m <= N_max`` symbols). The spare
    information bits of the last codeword are random bits from Sionna's ``BinarySource`` (a
    constant pattern would be just as valid for a linear code; random keeps the QAM symbols
    i.i.d.). If nothing fits, nothing is sent: the mid-grey fallback, ``failed``, 0 channel uses.

    :param budget: channel uses per image.
    :param source: ``"jpeg"``, ``"webp"`` or ``"avif"``.
    :param mcs: the MCS values swept: ``"all"`` (:data:`~semsim.digital.MCS_TABLE`), one name,
        or a list of names.
    :param codeword_length: LDPC codeword length ``n`` (default 1944).
    :param num_bp_iter: LDPC belief-propagation iterations, 1 to 1000 (default 20).
    :param scaling: ``"best"`` (default), ``"fallback"`` or ``"off"``: resolution in rate control
        (:data:`~baselines.source_coding.SCALING_MODES`).
    :param restart_rows: JPEG restart marker every this many MCU rows (default ``None``: 1 for
        JPEG, 0 for WebP and AVIF); 0: none.
    :param conceal: with restart markers, drop and conceal the intervals touching failed codewords
        (default ``True``).
    """

    axes: ClassVar[tuple[str, ...]] = ("mcs",)
    #: measured on a 2-core CPU, 768x512 at CBR 1/16, mean over MCS_TABLE (JPEG 3.6, AVIF 4.3);
    #: dominated by LDPC decoding, so it scales with the budget's codewords rather than pixels.
    cost_s_per_mpixel: ClassVar[float] = 4.0

    def __init__(self, budget: Budget, source: str = "jpeg", mcs: str | Sequence[str] = "all",
                 codeword_length: int = 1944, num_bp_iter: int = 20, scaling: str = "best",
                 restart_rows: int | None = None, conceal: bool = True):
        super().__init__(budget)
        restart_rows = check_restart(source, restart_rows, conceal)
        #: the source coder without restart markers: rate control falls back to it when the markers'
        #: bytes leave no quality and scale that fits (the receiver reads the markers' absence from the
        #: JPEG header)
        self.plain_coder = source_coder(source)
        self.coder = with_restart_markers(self.plain_coder, restart_rows)
        self.source = source
        if mcs == "all":
            mcs_list = [m.name for m in MCS_TABLE]
        elif isinstance(mcs, str):
            mcs_list = [parse_mcs(mcs).name]
        elif isinstance(mcs, Sequence) and mcs:
            mcs_list = [parse_mcs(m).name for m in mcs]
        else:
            raise ConfigError(f"mcs must be 'all', an MCS name or a list of names, got {mcs!r}")
        for m in mcs_list:
            check_link(m, codeword_length)
        if isinstance(num_bp_iter, bool) or not isinstance(num_bp_iter, int) or not 1 <= num_bp_iter <= 1000:
            raise ConfigError(f"num_bp_iter must be an integer in [1, 1000], got {num_bp_iter!r}")
        self.mcs_list = mcs_list
        self.codeword_length = codeword_length
        self.num_bp_iter = num_bp_iter
        self.scaling = check_scaling(scaling)
        self.restart_rows, self.conceal = restart_rows, conceal
        self.display_name = f"{SOURCE_LABELS[source]}+LDPC"
        self._links: dict[tuple[str, str], DigitalLink] = {}
        self._fits = FitCache()
        self._min_uses: dict[tuple[int, int], int] = {}
        self._last: Packet | None = None

    # --- axes ---------------------------------------------------------------------------------
    def sweep_values(self) -> dict[str, list[Any]]:
        return {"mcs": list(self.mcs_list)}

    def with_axes(self, **point: Any) -> "SeparationCodec":
        unknown = sorted(set(point) - {"mcs"})
        if unknown:
            raise ConfigError(f"method {self.display_name!r}: unknown axis {choices(unknown)}; valid choices: 'mcs'")
        if "mcs" not in point:
            return self
        codec = SeparationCodec(self.budget, source=self.source, mcs=str(point["mcs"]),
                                codeword_length=self.codeword_length, num_bp_iter=self.num_bp_iter,
                                scaling=self.scaling, restart_rows=self.restart_rows, conceal=self.conceal)
        codec._links, codec._fits = self._links, self._fits  # share built blocks and fits
        return codec

    @property
    def mcs(self) -> str:
        """The one MCS this codec sends with; :class:`ConfigError` while several are swept."""
        if len(self.mcs_list) != 1:
            raise ConfigError(f"method {self.display_name!r} sweeps {len(self.mcs_list)} MCS values; "
                              f"pick one with with_axes(mcs=...): {choices(self.mcs_list)}")
        return self.mcs_list[0]

    def link(self, mcs: str | None = None) -> DigitalLink:
        """The :class:`DigitalLink` of ``mcs`` (default: this codec's one MCS), built once."""
        from semsim.config import get_device

        name = self.mcs if mcs is None else parse_mcs(mcs).name
        key = (name, get_device())
        if key not in self._links:
            self._links[key] = DigitalLink(name, self.codeword_length, self.num_bp_iter)
        return self._links[key]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "source": self.source, "mcs": ",".join(self.mcs_list),
                "codeword_length": self.codeword_length, "num_bp_iter": self.num_bp_iter,
                "scaling": self.scaling, "restart_rows": self.restart_rows, "conceal": self.conceal}

    # --- budget -------------------------------------------------------------------------------
    def max_info_bits(self, height: int, width: int, mcs: str | None = None) -> int:
        """Information bits the budget carries at ``mcs``: ``floor(N_max m / n) k``."""
        mcs = parse_mcs(self.mcs if mcs is None else mcs)
        k, n = check_link(mcs, self.codeword_length)
        return (self.max_channel_uses(height, width) * mcs.num_bits_per_symbol // n) * k

    def min_channel_uses(self, height: int, width: int) -> int:
        """Symbols needed by the smallest plausible bitstream: a flat mid-grey image at the lowest
        quality and the smallest scale rate control may pick (a lower bound on real photos'
        sizes), sent with the swept MCS that needs the fewest symbols for it. Cheap: one encode per
        image size."""
        if (height, width) not in self._min_uses:
            size = (height, width) if self.scaling == "off" else smallest_size((height, width))
            grey = np.full((*size, 3), 128, dtype=np.uint8)
            bits = 8 * len(self.plain_coder.encode(grey, self.plain_coder.quality_range[0]))
            best = math.inf
            for m in self.mcs_list:
                mcs = parse_mcs(m)
                k, n = check_link(mcs, self.codeword_length)
                best = min(best, -(-bits // k) * n // mcs.num_bits_per_symbol)
            self._min_uses[(height, width)] = int(best)
        return self._min_uses[(height, width)]

    # --- transmitter and receiver for one image ------------------------------------------------
    def packet(self, image: torch.Tensor) -> Packet:
        """``[3, H, W]`` float image → :class:`Packet` (symbols empty if nothing fits)."""
        from sionna.phy.mapping import BinarySource

        _, h, w = image.shape
        link = self.link()
        fitted = self._fits.fit(self.coder, to_uint8(image), self.max_info_bits(h, w), self.scaling)
        if fitted is None and self.coder is not self.plain_coder:  # the markers' bytes do not fit: drop them
            fitted = self._fits.fit(self.plain_coder, to_uint8(image), self.max_info_bits(h, w), self.scaling)
        if fitted is None:
            return Packet(self.mcs, None, 0, None, torch.zeros(1, 0, dtype=torch.complex64), (h, w))
        bits = torch.from_numpy(bytes_to_bits(fitted.data).astype(np.float32)).to(link.device)
        c = -(-bits.numel() // link.k)
        pad = BinarySource(device=link.device)([c * link.k - bits.numel()])
        info_bits = torch.cat([bits, pad]).reshape(c, link.k)
        with torch.no_grad():
            symbols = link.encode(info_bits).reshape(1, -1)
        self.check_budget(symbols.shape[1], h, w)
        return Packet(self.mcs, fitted.quality, bits.numel(), info_bits, symbols, (h, w), fitted.scale)

    def source_decode(self, packet: Packet, data: bytes, codeword_ok: np.ndarray) -> np.ndarray:
        """The received bitstream → ``[H, W, 3]`` uint8 image at full size: decompressed (with
        restart markers and ``conceal``, the intervals touching failed codewords dropped and
        concealed), then upscaled if the packet was downscaled.

        :input codeword_ok: ``[C]`` bool, the codewords whose parity checks hold.
        :raises SourceDecodeError: nothing decodable was received.
        """
        if self.restart_rows and self.conceal and not codeword_ok.all():
            try:
                image = decode_concealed(data, trusted_bytes(codeword_ok, self.link(packet.mcs).k, len(data)),
                                         packet.coded_size)[0]
            except JpegStructureError as e:
                raise SourceDecodeError(str(e)) from None
        else:
            image = self.coder.decode(data, packet.coded_size)
        return upscale(image, packet.size)

    def receive(self, packet: Packet, y: torch.Tensor, info) -> tuple[torch.Tensor, bool, float, int]:
        """Channel output of one packet → ``([3, H, W] image, failed, bler, codewords failed)``."""
        from semsim.digital import equalize

        h, w = packet.size
        if packet.info_bits is None:
            return _fallback(h, w), True, math.nan, 0
        link = self.link(packet.mcs)
        y, no = equalize(y, info)
        s = link.symbols_per_codeword
        with torch.no_grad():
            bits_hat, ok = link.decode_checked(y.reshape(-1, s), no.reshape(-1, s))
        errors, blocks = block_errors(packet.info_bits, bits_hat)
        ok = ok.cpu().numpy()
        data = bits_to_bytes(bits_hat.reshape(-1)[:packet.num_bits])
        try:
            return from_uint8(self.source_decode(packet, data, ok)), False, errors / blocks, int((~ok).sum())
        except SourceDecodeError:
            return _fallback(h, w), True, errors / blocks, int((~ok).sum())

    # --- the contract ---------------------------------------------------------------------------
    def encode(self, images: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        """One image ``[1, 3, H, W]`` → ``[1, N]`` complex64 symbols. The packet header (MCS,
        bitstream length, scale, size) is kept for :meth:`decode` as out-of-band side information.
        Batches differ in length, so :meth:`transmit` handles them image by image."""
        if images.shape[0] != 1:
            raise ValueError(f"{self.display_name}: encode takes one image at a time (bitstream lengths "
                             f"differ); use transmit() for batches")
        self._last = self.packet(images[0])
        return self._last.symbols

    def decode(self, received: torch.Tensor, info, snr_db: torch.Tensor,
               image_size: tuple[int, int]) -> torch.Tensor:
        """``[1, N]`` received symbols of the last :meth:`encode` → ``[1, 3, H, W]`` image."""
        if self._last is None or tuple(image_size) != self._last.size:
            raise ValueError(f"{self.display_name}: decode needs the header of a previous encode() of that image")
        return self.receive(self._last, received, info)[0].unsqueeze(0)

    def transmit(self, images: torch.Tensor, channel, snr_db: float | torch.Tensor) -> Transmission:
        """Per image: fit → LDPC → QAM → channel → demap → LDPC decode → decompress (→ upscale)."""
        b, _, h, w = images.shape
        snrs = _snr_list(snr_db, b)
        outs, uses, overhead, bits, failed = [], [], [], [], []
        extra: dict[str, list[Any]] = {k: [] for k in ("mcs", "code_rate", "quality", "bler", "codewords_failed",
                                                        "scale")}
        for i in range(b):
            pkt = self.packet(images[i])
            if pkt.info_bits is None:
                out, fail, bler, cw_failed, n_used, ovh = _fallback(h, w), True, math.nan, math.nan, 0, 0
            else:
                y, info = channel(pkt.symbols, snrs[i])
                out, fail, bler, cw_failed = self.receive(pkt, y, info)
                n_used, ovh = pkt.symbols.shape[1], int(info.overhead)
            outs.append(out)
            uses.append(n_used)
            overhead.append(ovh)
            bits.append(float(pkt.num_bits))
            failed.append(fail)
            for key, value in (("mcs", pkt.mcs), ("code_rate", parse_mcs(pkt.mcs).rate_label),
                               ("quality", math.nan if pkt.quality is None else pkt.quality), ("bler", bler),
                               ("codewords_failed", cw_failed), ("scale", pkt.scale)):
                extra[key].append(value)
        output = torch.stack(outs).to(images.device)
        return Transmission(output=output, channel_uses=uses, overhead=overhead, bits=bits,
                            failed=failed, extra=extra)


def smallest_size(size: tuple[int, int]) -> tuple[int, int]:
    """The smallest coded size rate control may pick for an image of ``size``."""
    sizes = [scaled_size(size, s) for s in SCALES if min(scaled_size(size, s)) >= MIN_SIDE]
    return min(sizes, default=size, key=lambda hw: hw[0] * hw[1])


class CapacityCodec(Codec):
    """The separation bound (``jpeg+capacity``, ``webp+capacity``, ``avif+capacity``).

    ``floor(N_max C)`` bits reach the receiver without error, ``C = channel.capacity(snr_db)``
    (``log2(1 + SNR)`` on AWGN, the ergodic capacity with receiver CSI on fading channels); rate
    control picks the quality (and, with ``scaling``, the resolution) that fits. Uses the whole
    budget (``N_max`` channel uses). No channel is simulated. ``failed`` (mid-grey, 0 channel uses)
    when nothing fits.

    :param budget: channel uses per image.
    :param source: ``"jpeg"``, ``"webp"`` or ``"avif"``.
    :param scaling: ``"best"`` (default), ``"fallback"`` or ``"off"``, as for :class:`SeparationCodec`.
    """

    axes: ClassVar[tuple[str, ...]] = ()
    #: source coding only (about ten encodes per image and SNR; AVIF ~0.3 s at 768x512), 2-core CPU.
    cost_s_per_mpixel: ClassVar[float] = 1.0

    def __init__(self, budget: Budget, source: str = "jpeg", scaling: str = "best"):
        super().__init__(budget)
        self.coder = source_coder(source)
        self.source = source
        self.scaling = check_scaling(scaling)
        self.display_name = f"{SOURCE_LABELS[source]}+capacity"
        self._fits = FitCache()
        self._capacity: dict[tuple[str, float], float] = {}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "source": self.source, "scaling": self.scaling}

    def capacity(self, channel, snr_db: float) -> float:
        """Bits per channel use of ``channel`` at ``snr_db`` (cached per channel and SNR)."""
        key = (repr(channel.describe()), float(snr_db))
        if key not in self._capacity:
            self._capacity[key] = float(channel.capacity(float(snr_db)))
        return self._capacity[key]

    def transmit(self, images: torch.Tensor, channel, snr_db: float | torch.Tensor) -> Transmission:
        b, _, h, w = images.shape
        snrs = _snr_list(snr_db, b)
        n_max = self.max_channel_uses(h, w)
        outs, uses, overhead, bits, failed, quality, scale = [], [], [], [], [], [], []
        for i in range(b):
            max_bits = int(math.floor(n_max * self.capacity(channel, snrs[i])))
            fitted = self._fits.fit(self.coder, to_uint8(images[i]), max_bits, self.scaling)
            if fitted is None:
                out, used, ovh, nbits, fail, q, sc = _fallback(h, w), 0, 0, 0.0, True, math.nan, math.nan
            else:
                q, sc = fitted.quality, fitted.scale
                out = from_uint8(upscale(self.coder.decode(fitted.data, fitted.size), (h, w)))
                used, ovh, nbits, fail = n_max, int(channel.overhead(n_max)), float(8 * len(fitted.data)), False
            outs.append(out)
            uses.append(used)
            overhead.append(ovh)
            bits.append(nbits)
            failed.append(fail)
            quality.append(q)
            scale.append(sc)
        return Transmission(output=torch.stack(outs).to(images.device), channel_uses=uses,
                            overhead=overhead, bits=bits, failed=failed,
                            extra={"quality": quality, "scale": scale,
                                   "capacity": [self.capacity(channel, s) for s in snrs]})


for _name in SOURCE_CODERS:
    register("codec", f"{_name}+ldpc", source=_name)(SeparationCodec)
    register("codec", f"{_name}+capacity", source=_name)(CapacityCodec)
