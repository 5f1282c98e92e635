"""The digital link: 5G NR LDPC + Gray-coded square QAM, all from Sionna.

A modulation and coding scheme (:class:`MCS`) names a QAM order and an LDPC code rate (or
uncoded). :class:`DigitalLink` wires Sionna's blocks for one MCS::

    info bits [C, k] ─ LDPC5GEncoder ─ [C, n] ─ Mapper("qam", m) ─ symbols [C, n/m]
    symbols [C, n/m] + no ─ Demapper("app") ─ LLRs [C, n] ─ LDPC5GDecoder ─ bits [C, k]

``C`` is the number of codewords (the batch), ``n`` the codeword length (default 1944, divisible
by 2, 4 and 6 and giving an integer ``k = n r`` for every rate of :data:`MCS_TABLE`), ``k`` the
information bits per codeword and ``m`` the bits per QAM symbol. Uncoded schemes have ``k = n``
and take hard decisions from Sionna's max-log demapper, i.e. the nearest constellation point,
which is the detector the closed-form BER of :mod:`semsim.ber` describes.

The encoder is built with ``num_bits_per_symbol = m``, so Sionna applies the 38.212 bit
interleaver between the code and the QAM labels (the decoder undoes it).

LLRs follow Sionna's convention, ``log(p(b=1)/p(b=0))``, from demapper to decoder.

Example::

    >>> import torch
    >>> from semsim.digital import DigitalLink, MCS_TABLE
    >>> link = DigitalLink("16qam-1/2")
    >>> bits = torch.randint(0, 2, (4, link.k)).float()
    >>> x = link.encode(bits)                      # [4, 486] complex64
    >>> bits_hat = link.decode(x, no=0.01)         # noiseless enough: no errors
    >>> bool((bits_hat == bits).all()), x.shape
    (True, torch.Size([4, 486]))
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from .errors import ConfigError, choices

MODULATIONS = ("qpsk", "16qam", "64qam")
_BITS_PER_SYMBOL = {"qpsk": 2, "16qam": 4, "64qam": 6}
#: Sionna's LDPC5GEncoder refuses rates above 0.95 and fewer than 12 information bits.
_MAX_CODE_RATE = Fraction(95, 100)


@dataclass(frozen=True)
class MCS:
    """A modulation and coding scheme.

    :param modulation: ``"qpsk"``, ``"16qam"`` or ``"64qam"`` (Gray-coded square QAM).
    :param code_rate: LDPC code rate ``k/n`` as a :class:`~fractions.Fraction` (a string like
        ``"1/2"`` is converted), or ``None`` for an uncoded link.
    """

    modulation: str
    code_rate: Fraction | None

    def __post_init__(self):
        if self.modulation not in MODULATIONS:
            raise ConfigError(f"unknown modulation {self.modulation!r}; valid choices: {choices(MODULATIONS)}")
        rate = self.code_rate
        if rate is not None:
            try:
                rate = Fraction(rate)
            except (TypeError, ValueError, ZeroDivisionError):
                raise ConfigError(f"code rate must be a fraction like '1/2' or None, got {rate!r}") from None
            if not 0 < rate <= _MAX_CODE_RATE:
                raise ConfigError(f"code rate must lie in (0, {_MAX_CODE_RATE}], got {rate}")
            object.__setattr__(self, "code_rate", rate)

    @property
    def num_bits_per_symbol(self) -> int:
        """Bits per QAM symbol ``m``: 2, 4 or 6."""
        return _BITS_PER_SYMBOL[self.modulation]

    @property
    def rate(self) -> float:
        """Code rate as a float (1.0 when uncoded)."""
        return 1.0 if self.code_rate is None else float(self.code_rate)

    @property
    def spectral_efficiency(self) -> float:
        """Information bits per channel use, ``m r``."""
        return self.num_bits_per_symbol * self.rate

    @property
    def rate_label(self) -> str:
        """``"1/2"``, or ``"uncoded"``."""
        return "uncoded" if self.code_rate is None else f"{self.code_rate.numerator}/{self.code_rate.denominator}"

    @property
    def name(self) -> str:
        """Canonical name: ``"16qam-1/2"``, ``"qpsk-uncoded"``."""
        return f"{self.modulation}-{self.rate_label}"

    def __str__(self) -> str:
        return self.name


#: The schemes of the literature's comparisons, in order of spectral efficiency.
MCS_TABLE: tuple[MCS, ...] = tuple(
    MCS(mod, Fraction(rate)) for mod, rate in (
        ("qpsk", "1/3"), ("qpsk", "1/2"), ("qpsk", "2/3"),
        ("16qam", "1/2"), ("16qam", "2/3"),
        ("64qam", "1/2"), ("64qam", "2/3"), ("64qam", "3/4"),
    )
)

_MOD_ALIASES = {"qpsk": "qpsk", "4qam": "qpsk", "qam4": "qpsk", "16qam": "16qam", "qam16": "16qam",
                "64qam": "64qam", "qam64": "64qam"}
_MCS_RE = re.compile(r"^(?P<mod>qpsk|4qam|qam4|16qam|qam16|64qam|qam64)[-_,/ ]*(?:r=?)?"
                     r"(?P<rate>uncoded|none|\d+/\d+|0?\.\d+)?$")


def parse_mcs(text: str | MCS) -> MCS:
    """``"16qam-1/2"``, ``"16QAM r=1/2"``, ``"QAM16 1/2"``, ``"qpsk-uncoded"`` → :class:`MCS`.

    A modulation without a rate is refused (say ``uncoded`` explicitly).

    :raises ConfigError: unparseable text, listing the valid names.
    """
    if isinstance(text, MCS):
        return text
    valid = [m.name for m in MCS_TABLE] + [f"{mod}-uncoded" for mod in MODULATIONS]
    if isinstance(text, str):
        match = _MCS_RE.match(re.sub(r"\s+", " ", text.strip().lower()).replace("r = ", "r="))
        if match and match["rate"] is not None:
            rate = None if match["rate"] in ("uncoded", "none") else Fraction(match["rate"])
            return MCS(_MOD_ALIASES[match["mod"]], rate)
    raise ConfigError(f"unknown MCS {text!r}; valid choices: {choices(valid)} "
                      f"(other LDPC rates as '<modulation>-<k>/<n>')")


def check_link(mcs: MCS | str, codeword_length: int) -> tuple[int, int]:
    """``(k, n)`` of ``mcs`` at ``codeword_length``; :class:`ConfigError` if they are not integers
    or outside Sionna's 5G LDPC range."""
    mcs = parse_mcs(mcs)
    n = codeword_length
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"codeword_length must be a positive integer, got {n!r}")
    if n % mcs.num_bits_per_symbol:
        raise ConfigError(f"codeword_length {n} is not a multiple of {mcs.num_bits_per_symbol} "
                          f"bits per {mcs.modulation} symbol")
    if mcs.code_rate is None:
        return n, n
    k = n * mcs.code_rate
    if k.denominator != 1:
        raise ConfigError(f"codeword_length {n} times code rate {mcs.code_rate} is not an integer")
    if not 12 <= k <= 8448:
        raise ConfigError(f"{mcs.name} at codeword_length {n} gives k={k}; 5G LDPC needs 12 <= k <= 8448")
    return int(k), n


def equalize(y: torch.Tensor, info) -> tuple[torch.Tensor, torch.Tensor]:
    """Demapper input from a channel output: ``(y, no)`` as they are if the channel equalised (or
    gave no CSI), else zero-forcing with the reported CSI, ``(y/h, no/|h|^2)``.

    :input y: ``[B, N]`` complex64, channel output.
    :input info: :class:`~semsim.channels.ChannelInfo` of that call.
    :output: ``[B, N]`` complex64 and ``[B, N]`` float32 noise variance (linear).
    """
    no = info.no
    if info.equalized or info.h is None:
        return y, no
    h = info.h
    return y / h, no / h.abs().square().clamp_min(1e-20)


class DigitalLink(torch.nn.Module):
    """Sionna's 5G LDPC code and QAM (de)mapper for one MCS, batched over codewords.

    Blocks are built on ``sionna.phy.config.device`` at construction (set it with
    :func:`semsim.config.set_device` first); inputs are moved there.

    :param mcs: an :class:`MCS` or its name (``"16qam-1/2"``).
    :param codeword_length: ``n``, coded bits per codeword (default 1944).
    :param num_bp_iter: belief-propagation iterations of the LDPC decoder (default 20).
    :param demapping_method: ``"app"`` (default, exact LLRs) or ``"maxlog"`` for coded links.
    :param decode_chunk: codewords per call of the LDPC decoder; ``"auto"`` (default) is 64 on
        the CPU, where Sionna's BP decoder slows down per codeword in larger batches (cache), and
        unlimited on CUDA; ``None`` is unlimited.
    """

    def __init__(self, mcs: MCS | str, codeword_length: int = 1944, num_bp_iter: int = 20,
                 demapping_method: str = "app", decode_chunk: int | str | None = "auto"):
        super().__init__()
        from sionna.phy.mapping import Demapper, Mapper

        self.mcs = parse_mcs(mcs)
        self._k, self._n = check_link(self.mcs, codeword_length)
        if isinstance(num_bp_iter, bool) or not isinstance(num_bp_iter, int) or num_bp_iter < 1:
            raise ConfigError(f"num_bp_iter must be a positive integer, got {num_bp_iter!r}")
        if demapping_method not in ("app", "maxlog"):
            raise ConfigError(f"unknown demapping_method {demapping_method!r}; valid choices: 'app', 'maxlog'")
        m = self.mcs.num_bits_per_symbol
        self.num_bp_iter = num_bp_iter
        self.mapper = Mapper("qam", m)
        self.demapper = Demapper(demapping_method, "qam", m)
        if self.mcs.code_rate is None:
            self.encoder = self.decoder = None
            # Nearest-point detection: the sign of the max-log LLR.
            self.hard_demapper = Demapper("maxlog", "qam", m, hard_out=True)
        else:
            from sionna.phy.fec.ldpc import LDPC5GDecoder, LDPC5GEncoder

            self.encoder = LDPC5GEncoder(self._k, self._n, num_bits_per_symbol=m, check_input=False)
            self.decoder = LDPC5GDecoder(self.encoder, hard_out=True, num_iter=num_bp_iter)
        self.device = self.mapper.device
        if decode_chunk == "auto":
            decode_chunk = 64 if self.device == "cpu" else None
        if decode_chunk is not None and (isinstance(decode_chunk, bool) or not isinstance(decode_chunk, int)
                                         or decode_chunk < 1):
            raise ConfigError(f"decode_chunk must be a positive integer, 'auto' or None, got {decode_chunk!r}")
        self.decode_chunk = decode_chunk

    @property
    def k(self) -> int:
        """Information bits per codeword."""
        return self._k

    @property
    def n(self) -> int:
        """Coded bits per codeword."""
        return self._n

    @property
    def num_bits_per_symbol(self) -> int:
        return self.mcs.num_bits_per_symbol

    @property
    def symbols_per_codeword(self) -> int:
        """Channel symbols per codeword, ``n / m``."""
        return self._n // self.mcs.num_bits_per_symbol

    def encode(self, bits: torch.Tensor) -> torch.Tensor:
        """Information bits → QAM symbols (unit average energy, Sionna's normalised QAM).

        :input bits: ``[C, k]`` float32 with entries 0 or 1 (any leading shape ``[..., k]``).
        :output: ``[C, n/m]`` complex64.
        """
        bits = bits.to(self.device, torch.float32)
        if bits.shape[-1] != self._k:
            raise ValueError(f"expected [..., {self._k}] information bits, got {tuple(bits.shape)}")
        coded = bits if self.encoder is None else self.encoder(bits)
        return self.mapper(coded)

    def llr(self, y: torch.Tensor, no: torch.Tensor | float) -> torch.Tensor:
        """Bit LLRs ``log(p(1)/p(0))`` of the coded bits.

        :input y: ``[C, n/m]`` complex, equalised received symbols (``y ≈ x + noise``).
        :input no: ``[C, n/m]`` float32 (or broadcastable, or a scalar): noise variance per
            complex symbol, linear.
        :output: ``[C, n]`` float32.
        """
        y = y.to(self.device, torch.complex64)
        no = torch.as_tensor(no, dtype=torch.float32, device=self.device)
        return self.demapper(y, no)

    def decode(self, y: torch.Tensor, no: torch.Tensor | float) -> torch.Tensor:
        """Received symbols → hard information bits.

        :input y: ``[C, n/m]`` complex, equalised received symbols.
        :input no: ``[C, n/m]`` float32, broadcastable, or scalar; linear noise variance.
        :output: ``[C, k]`` float32 with entries 0 or 1.
        """
        if self.decoder is None:
            y = y.to(self.device, torch.complex64)
            no = torch.as_tensor(no, dtype=torch.float32, device=self.device)
            return self.hard_demapper(y, no)
        llr = self.llr(y, no)
        chunk = self.decode_chunk
        if chunk is None or llr.dim() != 2 or llr.shape[0] <= chunk:
            return self.decoder(llr)
        return torch.cat([self.decoder(part) for part in llr.split(chunk)])

    def send(self, bits: torch.Tensor, channel, snr_db: float | torch.Tensor,
             rows: int = 1) -> tuple[torch.Tensor, object]:
        """encode → channel → (zero-forcing if the channel did not equalise) → decode.

        The ``C`` codewords are laid out as ``rows`` channel rows of ``C/rows`` codewords each
        (one row is one image's frame; the channel normalises power per row).

        :input bits: ``[C, k]`` float32 0/1, ``C`` a multiple of ``rows``.
        :input snr_db: Es/N0 in dB, a scalar or ``[rows]``.
        :output bits_hat: ``[C, k]`` float32 0/1.
        :output info: the channel's :class:`~semsim.channels.ChannelInfo` (``[rows, N]`` fields).
        """
        c = bits.shape[0]
        if c % rows:
            raise ValueError(f"{c} codewords do not split into {rows} equal rows")
        x = self.encode(bits)
        y, info = channel(x.reshape(rows, -1), snr_db)
        y, no = equalize(y, info)
        s = self.symbols_per_codeword
        return self.decode(y.reshape(c, s), no.reshape(c, s)), info

    def extra_repr(self) -> str:
        return f"mcs={self.mcs.name}, k={self._k}, n={self._n}, num_bp_iter={self.num_bp_iter}"


def bytes_to_bits(data: bytes) -> np.ndarray:
    """Bytes → ``[8 len(data)]`` uint8 bits, most significant bit first."""
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


def bits_to_bytes(bits: np.ndarray | torch.Tensor) -> bytes:
    """``[L]`` bits (0/1, any numeric dtype), MSB first → bytes; a partial last byte is padded
    with zeros."""
    if isinstance(bits, torch.Tensor):
        bits = bits.detach().cpu().numpy()
    return np.packbits(np.asarray(bits).reshape(-1).astype(np.uint8) & 1).tobytes()
