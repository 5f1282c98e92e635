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
bitstream length in bits and (for the bound) nothing else. The bitstream itself carries the
quality.

When the decoded bitstream cannot be decompressed (Pillow raises, or the image has the wrong size
or mode), the receiver outputs :data:`FALLBACK_VALUE` (mid-grey) and the row is ``failed``. A
corrupted stream that still decompresses is kept as it is: that is what a receiver would show.

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

import hashlib
import io
import math
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image

from semsim.codec import Budget, Codec, Transmission
from semsim.digital import MCS_TABLE, DigitalLink, bits_to_bytes, bytes_to_bits, check_link, parse_mcs
from semsim.errors import ConfigError, choices
from semsim.metrics import block_errors
from semsim.registry import register

#: The receiver's output when the bitstream cannot be decoded: a mid-grey image.
FALLBACK_VALUE = 0.5


class SourceDecodeError(ValueError):
    """A bitstream could not be decompressed into an image of the expected size."""


@dataclass(frozen=True)
class SourceCoder:
    """A Pillow image codec at an integer quality setting.

    :param name: ``"jpeg"``, ``"webp"`` or ``"avif"``.
    :param format: Pillow's format name.
    :param quality_range: ``(lowest, highest)`` quality; bitstreams grow with quality.
    :param options: further keyword arguments of ``Image.save`` (e.g. the AVIF encoder speed).
    """

    name: str
    format: str
    quality_range: tuple[int, int]
    options: dict[str, Any] = field(default_factory=dict)

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        """``[H, W, 3]`` uint8 RGB → bitstream at ``quality``."""
        lo, hi = self.quality_range
        if not lo <= quality <= hi:
            raise ConfigError(f"{self.name}: quality must lie in [{lo}, {hi}], got {quality}")
        buf = io.BytesIO()
        Image.fromarray(image, "RGB").save(buf, self.format, quality=int(quality), **self.options)
        return buf.getvalue()

    def decode(self, data: bytes, size: tuple[int, int] | None = None) -> np.ndarray:
        """Bitstream → ``[H, W, 3]`` uint8 RGB.

        :param size: the expected ``(H, W)``; checked before the pixels are decoded, so a corrupted
            header cannot make Pillow allocate a huge image.
        :raises SourceDecodeError: the stream is not a decodable image of that size in RGB.
        """
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                img = Image.open(io.BytesIO(data), formats=[self.format])
                if size is not None and img.size != (size[1], size[0]):
                    raise SourceDecodeError(f"{self.name}: decoded size {img.size[::-1]} != {tuple(size)}")
                if img.mode != "RGB":
                    raise SourceDecodeError(f"{self.name}: decoded mode {img.mode!r}, expected 'RGB'")
                img.load()
                out = np.asarray(img, dtype=np.uint8)
        except SourceDecodeError:
            raise
        except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, … on corrupt data
            raise SourceDecodeError(f"{self.name}: cannot decode bitstream: {e}") from None
        if out.ndim != 3 or out.shape[2] != 3:
            raise SourceDecodeError(f"{self.name}: decoded array has shape {out.shape}")
        return out

    def fit(self, image: np.ndarray, max_bits: int) -> tuple[int, bytes] | None:
        """The highest quality whose bitstream has at most ``max_bits`` bits, and that bitstream.

        Binary search on quality, then a scan upwards from the first quality that did not fit
        until two consecutive ones do not fit, in case sizes are not monotone in quality. The
        result is the highest fitting quality among those tested, and ``quality + 1`` was tested
        and does not fit (unless the result is the top of the range).

        :returns: ``(quality, bitstream)``, or ``None`` if even the lowest quality does not fit.
        """
        lo, hi = self.quality_range
        tried: dict[int, bytes] = {}

        def fits(q: int) -> bool:
            if q not in tried:
                tried[q] = self.encode(image, q)
            return 8 * len(tried[q]) <= max_bits

        if not fits(lo):
            return None
        if fits(hi):
            return hi, tried[hi]
        good, bad = lo, hi  # good fits, bad does not
        while bad - good > 1:
            mid = (good + bad) // 2
            if fits(mid):
                good = mid
            else:
                bad = mid
        # Sizes need not be monotone in quality: keep scanning up until two misses in a row.
        q, misses = bad + 1, 1
        while q <= hi and misses < 2:
            if fits(q):
                good, misses = q, 0
            else:
                misses += 1
            q += 1
        return good, tried[good]


#: Source coders by name. AVIF uses libavif's speed 8 (fast; default 6 is ~3x slower for a few
#: percent smaller files); WebP uses Pillow's default method 4.
SOURCE_CODERS: dict[str, SourceCoder] = {
    "jpeg": SourceCoder("jpeg", "JPEG", (1, 95), {"optimize": True}),
    "webp": SourceCoder("webp", "WEBP", (0, 100), {"method": 4}),
    "avif": SourceCoder("avif", "AVIF", (0, 100), {"speed": 8}),
}

#: How each source coder is written in method labels.
SOURCE_LABELS = {"jpeg": "JPEG", "webp": "WebP", "avif": "AVIF"}


def source_coder(name: str) -> SourceCoder:
    """The :class:`SourceCoder` called ``name``; :class:`ConfigError` listing the valid ones."""
    if name not in SOURCE_CODERS:
        raise ConfigError(f"unknown source coder {name!r}; valid choices: {choices(SOURCE_CODERS)}")
    if name == "avif":
        from PIL import features

        if not features.check("avif"):
            raise ConfigError("source coder 'avif' needs Pillow built with AVIF support (Pillow >= 11.3 wheels)")
    return SOURCE_CODERS[name]


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """``[3, H, W]`` float in [0, 1] → ``[H, W, 3]`` uint8."""
    arr = image.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    return arr.permute(1, 2, 0).cpu().numpy()


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """``[H, W, 3]`` uint8 → ``[3, H, W]`` float32 in [0, 1]."""
    return torch.from_numpy(np.array(array, dtype=np.uint8)).permute(2, 0, 1).float().div(255)


def _snr_list(snr_db: float | torch.Tensor, b: int) -> list[float]:
    t = torch.as_tensor(snr_db, dtype=torch.float32).flatten()
    if t.numel() == 1:
        return [float(t)] * b
    if t.numel() != b:
        raise ValueError(f"snr_db has {t.numel()} values for a batch of {b} images")
    return [float(v) for v in t]


class _FitCache:
    """Remembers :meth:`SourceCoder.fit` results: the runner sends the same image at every SNR."""

    def __init__(self, size: int = 4096):
        self._d: OrderedDict = OrderedDict()
        self._size = size

    def fit(self, coder: SourceCoder, image: np.ndarray, max_bits: int):
        key = (coder.name, image.shape, hashlib.sha1(image.tobytes()).hexdigest(), int(max_bits))
        if key in self._d:
            self._d.move_to_end(key)
            return self._d[key]
        out = coder.fit(image, max_bits)
        self._d[key] = out
        if len(self._d) > self._size:
            self._d.popitem(last=False)
        return out


def _fallback(h: int, w: int) -> torch.Tensor:
    return torch.full((3, h, w), FALLBACK_VALUE)


@dataclass
class Packet:
    """One image's digital transmission, as the transmitter built it.

    ``num_bits``, ``mcs`` and the image size are the out-of-band header the receiver knows;
    ``info_bits`` are kept only so the simulation can count block errors.

    :ivar info_bits: ``[C, k]`` float32 0/1, the bitstream then random padding in the last codeword.
    :ivar symbols: ``[1, C n/m]`` complex64.
    """

    mcs: str
    quality: int | None
    num_bits: int
    info_bits: torch.Tensor | None
    symbols: torch.Tensor
    size: tuple[int, int]


class SeparationCodec(Codec):
    """Pillow source coder + Sionna 5G LDPC + QAM (``jpeg+ldpc``, ``webp+ldpc``, ``avif+ldpc``).

    For an ``H x W`` image the budget allows ``N_max`` channel uses, i.e.
    ``C_max = floor(N_max m / n)`` codewords and ``C_max k`` information bits. The source coder
    takes the highest quality fitting those bits; only the ``C = ceil(bits / k)`` codewords needed
    are sent (``C n / m <= N_max`` symbols). The spare information bits of the last codeword are
    random bits from Sionna's ``BinarySource`` (a constant pattern would be just as valid for a
    linear code; random keeps the QAM symbols i.i.d.). If even the lowest quality does not fit,
    nothing is sent: the mid-grey fallback, ``failed``, 0 channel uses.

    :param budget: channel uses per image.
    :param source: ``"jpeg"``, ``"webp"`` or ``"avif"``.
    :param mcs: the MCS values swept: ``"all"`` (:data:`~semsim.digital.MCS_TABLE`), one name,
        or a list of names.
    :param codeword_length: LDPC codeword length ``n`` (default 1944).
    :param num_bp_iter: LDPC belief-propagation iterations, 1 to 1000 (default 20).
    """

    axes: ClassVar[tuple[str, ...]] = ("mcs",)
    #: measured on a 2-core CPU, 768x512 at CBR 1/16, mean over MCS_TABLE (JPEG 3.6, AVIF 4.3);
    #: dominated by LDPC decoding, so it scales with the budget's codewords rather than pixels.
    cost_s_per_mpixel: ClassVar[float] = 4.0

    def __init__(self, budget: Budget, source: str = "jpeg", mcs: str | Sequence[str] = "all",
                 codeword_length: int = 1944, num_bp_iter: int = 20):
        super().__init__(budget)
        self.coder = source_coder(source)
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
        self.display_name = f"{SOURCE_LABELS[source]}+LDPC"
        self._links: dict[tuple[str, str], DigitalLink] = {}
        self._fits = _FitCache()
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
                                codeword_length=self.codeword_length, num_bp_iter=self.num_bp_iter)
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
                "codeword_length": self.codeword_length, "num_bp_iter": self.num_bp_iter}

    # --- budget -------------------------------------------------------------------------------
    def max_info_bits(self, height: int, width: int, mcs: str | None = None) -> int:
        """Information bits the budget carries at ``mcs``: ``floor(N_max m / n) k``."""
        mcs = parse_mcs(self.mcs if mcs is None else mcs)
        k, n = check_link(mcs, self.codeword_length)
        return (self.max_channel_uses(height, width) * mcs.num_bits_per_symbol // n) * k

    def min_channel_uses(self, height: int, width: int) -> int:
        """Symbols needed by the smallest plausible bitstream: a flat mid-grey ``H x W`` image at
        the lowest quality (a lower bound on real photos' sizes), sent with the swept MCS that
        needs the fewest symbols for it. Cheap: one encode per image size."""
        if (height, width) not in self._min_uses:
            grey = np.full((height, width, 3), 128, dtype=np.uint8)
            bits = 8 * len(self.coder.encode(grey, self.coder.quality_range[0]))
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
        fitted = self._fits.fit(self.coder, to_uint8(image), self.max_info_bits(h, w))
        if fitted is None:
            return Packet(self.mcs, None, 0, None, torch.zeros(1, 0, dtype=torch.complex64), (h, w))
        quality, data = fitted
        bits = torch.from_numpy(bytes_to_bits(data).astype(np.float32)).to(link.device)
        c = -(-bits.numel() // link.k)
        pad = BinarySource(device=link.device)([c * link.k - bits.numel()])
        info_bits = torch.cat([bits, pad]).reshape(c, link.k)
        with torch.no_grad():
            symbols = link.encode(info_bits).reshape(1, -1)
        self.check_budget(symbols.shape[1], h, w)
        return Packet(self.mcs, quality, bits.numel(), info_bits, symbols, (h, w))

    def receive(self, packet: Packet, y: torch.Tensor, info) -> tuple[torch.Tensor, bool, float]:
        """Channel output of one packet → ``([3, H, W] image, failed, bler)``."""
        from semsim.digital import equalize

        h, w = packet.size
        if packet.info_bits is None:
            return _fallback(h, w), True, math.nan
        link = self.link(packet.mcs)
        y, no = equalize(y, info)
        s = link.symbols_per_codeword
        with torch.no_grad():
            bits_hat = link.decode(y.reshape(-1, s), no.reshape(-1, s))
        errors, blocks = block_errors(packet.info_bits, bits_hat)
        bler = errors / blocks
        data = bits_to_bytes(bits_hat.reshape(-1)[:packet.num_bits])
        try:
            return from_uint8(self.coder.decode(data, (h, w))), False, bler
        except SourceDecodeError:
            return _fallback(h, w), True, bler

    # --- the contract ---------------------------------------------------------------------------
    def encode(self, images: torch.Tensor, snr_db: torch.Tensor) -> torch.Tensor:
        """One image ``[1, 3, H, W]`` → ``[1, N]`` complex64 symbols. The packet header (MCS,
        bitstream length, size) is kept for :meth:`decode` as out-of-band side information.
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
        """Per image: fit → LDPC → QAM → channel → demap → LDPC decode → decompress."""
        b, _, h, w = images.shape
        snrs = _snr_list(snr_db, b)
        outs, uses, overhead, bits, failed = [], [], [], [], []
        extra: dict[str, list[Any]] = {"mcs": [], "code_rate": [], "quality": [], "bler": []}
        for i in range(b):
            pkt = self.packet(images[i])
            if pkt.info_bits is None:
                out, fail, bler, n_used, ovh = _fallback(h, w), True, math.nan, 0, 0
            else:
                y, info = channel(pkt.symbols, snrs[i])
                out, fail, bler = self.receive(pkt, y, info)
                n_used, ovh = pkt.symbols.shape[1], int(info.overhead)
            outs.append(out)
            uses.append(n_used)
            overhead.append(ovh)
            bits.append(float(pkt.num_bits))
            failed.append(fail)
            extra["mcs"].append(pkt.mcs)
            extra["code_rate"].append(parse_mcs(pkt.mcs).rate_label)
            extra["quality"].append(math.nan if pkt.quality is None else pkt.quality)
            extra["bler"].append(bler)
        output = torch.stack(outs).to(images.device)
        return Transmission(output=output, channel_uses=uses, overhead=overhead, bits=bits,
                            failed=failed, extra=extra)


class CapacityCodec(Codec):
    """The separation bound (``jpeg+capacity``, ``webp+capacity``, ``avif+capacity``).

    ``floor(N_max C)`` bits reach the receiver without error, ``C = channel.capacity(snr_db)``
    (``log2(1 + SNR)`` on AWGN, the ergodic capacity with receiver CSI on fading channels); the
    source coder takes the highest quality that fits. Uses the whole budget (``N_max`` channel
    uses). No channel is simulated. ``failed`` (mid-grey, 0 channel uses) when nothing fits.

    :param budget: channel uses per image.
    :param source: ``"jpeg"``, ``"webp"`` or ``"avif"``.
    """

    axes: ClassVar[tuple[str, ...]] = ()
    #: source coding only (about ten encodes per image and SNR; AVIF ~0.3 s at 768x512), 2-core CPU.
    cost_s_per_mpixel: ClassVar[float] = 1.0

    def __init__(self, budget: Budget, source: str = "jpeg"):
        super().__init__(budget)
        self.coder = source_coder(source)
        self.source = source
        self.display_name = f"{SOURCE_LABELS[source]}+capacity"
        self._fits = _FitCache()
        self._capacity: dict[tuple[str, float], float] = {}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "source": self.source}

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
        outs, uses, overhead, bits, failed, quality = [], [], [], [], [], []
        for i in range(b):
            max_bits = int(math.floor(n_max * self.capacity(channel, snrs[i])))
            fitted = self._fits.fit(self.coder, to_uint8(images[i]), max_bits)
            if fitted is None:
                out, used, ovh, nbits, fail, q = _fallback(h, w), 0, 0, 0.0, True, math.nan
            else:
                q, data = fitted
                out, used, ovh = from_uint8(self.coder.decode(data, (h, w))), n_max, int(channel.overhead(n_max))
                nbits, fail = float(8 * len(data)), False
            outs.append(out)
            uses.append(used)
            overhead.append(ovh)
            bits.append(nbits)
            failed.append(fail)
            quality.append(q)
        return Transmission(output=torch.stack(outs).to(images.device), channel_uses=uses,
                            overhead=overhead, bits=bits, failed=failed,
                            extra={"quality": quality, "capacity": [self.capacity(channel, s) for s in snrs]})


for _name in SOURCE_CODERS:
    register("codec", f"{_name}+ldpc", source=_name)(SeparationCodec)
    register("codec", f"{_name}+capacity", source=_name)(CapacityCodec)
