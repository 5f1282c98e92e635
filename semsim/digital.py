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

Early termination: the decoder runs ``check_every`` iterations at a time (Sionna's
``return_state`` hands back the ``msg_v2c`` messages and the next call resumes from them, which
for flooding BP is exactly the same computation as one longer call) and stops the codewords whose
hard decisions satisfy every parity check. A satisfied syndrome means the decision is a codeword;
belief propagation keeps it in practice, and ``tests/test_ber.py`` checks that the decisions equal
those of Sionna's decoder run for all ``num_bp_iter`` iterations on thousands of codewords at and
above the waterfall. The decoder also reports which codewords still fail their parity checks
(:meth:`DigitalLink.decode_checked`). On the CPU, torch's thread count for the decoder is picked
by timing it (:class:`~semsim.tuning.ThreadTuner`).

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
from .tuning import ThreadTuner, shared_tuner

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


class _RecordingVNUpdate:
    """Sionna's ``vn_update_sum`` (the decoder's default variable-node update), passed as the
    decoder's ``vn_update``, that also keeps the variable-node estimates of the latest iteration
    (``[C, num_vns]`` float32, LLRs ``log(p(0)/p(1))``) for the syndrome check. (A
    ``v2c_callbacks`` entry would see them too, but costs an extra message gather and scatter per
    decoder call.)"""

    x_hat: torch.Tensor | None = None

    def __call__(self, msg_c2v, mask, llr_ch, llr_clipping=None):
        from sionna.phy.fec.ldpc import vn_update_sum

        msg_v2c, self.x_hat = vn_update_sum(msg_c2v, mask, llr_ch, llr_clipping)
        return msg_v2c, self.x_hat


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
    :param early_stop: stop decoding each codeword once its syndrome is satisfied (default
        ``True``); ``False`` always runs ``num_bp_iter`` iterations.
    :param check_every: BP iterations between syndrome checks (default 1).
    :param decode_threads: torch threads while decoding on the CPU: ``"auto"`` (default) times 1
        and ``torch.get_num_threads()`` threads and keeps the faster (one :class:`ThreadTuner` per
        process, shared by all links), an integer fixes it, ``None`` leaves torch's setting.
    """

    def __init__(self, mcs: MCS | str, codeword_length: int = 1944, num_bp_iter: int = 20,
                 demapping_method: str = "app", decode_chunk: int | str | None = "auto",
                 early_stop: bool = True, check_every: int = 1, decode_threads: int | str | None = "auto"):
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
            self._estimate = _RecordingVNUpdate()
            self.decoder = LDPC5GDecoder(self.encoder, hard_out=True, num_iter=num_bp_iter, return_state=True,
                                         vn_update=self._estimate)
            # The decoder's (pruned) parity-check matrix, sparse, for the syndrome.
            import scipy.sparse as sps

            checks, variables, _ = sps.find(sps.csr_matrix(self.decoder.pcm))
            self._pcm = torch.sparse_coo_tensor(
                torch.as_tensor(np.stack([checks, variables]), dtype=torch.long), torch.ones(len(checks)),
                size=self.decoder.pcm.shape, check_invariants=True).coalesce().to(self.mapper.device)
        self.device = self.mapper.device
        if decode_chunk == "auto":
            decode_chunk = 64 if self.device == "cpu" else None
        if decode_chunk is not None and (isinstance(decode_chunk, bool) or not isinstance(decode_chunk, int)
                                         or decode_chunk < 1):
            raise ConfigError(f"decode_chunk must be a positive integer, 'auto' or None, got {decode_chunk!r}")
        self.decode_chunk = decode_chunk
        if not isinstance(early_stop, bool):
            raise ConfigError(f"early_stop must be true or false, got {early_stop!r}")
        if isinstance(check_every, bool) or not isinstance(check_every, int) or check_every < 1:
            raise ConfigError(f"check_every must be a positive integer, got {check_every!r}")
        self.early_stop, self.check_every = early_stop, check_every
        if decode_threads == "auto":
            most = torch.get_num_threads()
            self.tuner = shared_tuner((1, most)) if self.device == "cpu" and most > 1 else None
        elif decode_threads is None:
            self.tuner = None
        elif isinstance(decode_threads, int) and not isinstance(decode_threads, bool) and decode_threads >= 1:
            self.tuner = ThreadTuner((decode_threads,))
        else:
            raise ConfigError(f"decode_threads must be a positive integer, 'auto' or None, got {decode_threads!r}")
        #: BP iterations run, summed over codewords, since construction (for benchmarks).
        self.iterations_run = 0

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
        """Received symbols → ``[C, k]`` hard information bits (:meth:`decode_checked` without the
        parity status)."""
        return self.decode_checked(y, no)[0]

    def decode_checked(self, y: torch.Tensor, no: torch.Tensor | float) -> tuple[torch.Tensor, torch.Tensor]:
        """Received symbols → hard information bits and whether each codeword's parity checks hold.

        A codeword whose checks fail after the last BP iteration is known to be unreliable (the
        receiver can drop exactly its bits); one whose checks hold is a codeword, almost always the
        one sent. An uncoded link has no checks: every block counts as passed.

        :input y: ``[C, n/m]`` complex, equalised received symbols.
        :input no: ``[C, n/m]`` float32, broadcastable, or scalar; linear noise variance.
        :output bits: ``[C, k]`` float32 with entries 0 or 1.
        :output ok: ``[C]`` bool.
        """
        if self.decoder is None:
            y = y.to(self.device, torch.complex64)
            no = torch.as_tensor(no, dtype=torch.float32, device=self.device)
            bits = self.hard_demapper(y, no)
            return bits, torch.ones(bits.shape[:-1], dtype=torch.bool, device=bits.device)
        return self.decode_llr_checked(self.llr(y, no))

    def decode_llr(self, llr: torch.Tensor) -> torch.Tensor:
        """``[..., n]`` LLRs → ``[..., k]`` hard information bits (:meth:`decode_llr_checked`
        without the parity status)."""
        return self.decode_llr_checked(llr)[0]

    def decode_llr_checked(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """LLRs of the coded bits → hard information bits and parity status, by belief propagation
        in chunks of ``decode_chunk`` codewords, stopping early (``early_stop``) where the syndrome
        is satisfied.

        :input llr: ``[..., n]`` float32, ``log(p(1)/p(0))``.
        :output bits: ``[..., k]`` float32 with entries 0 or 1.
        :output ok: ``[...]`` bool, every parity check of the final decisions holds.
        """
        if self.decoder is None:
            raise ValueError(f"{self.mcs.name} is uncoded: there is no LDPC decoder")
        lead = llr.shape[:-1]
        llr = llr.to(self.device, torch.float32).reshape(-1, self._n)
        if not llr.shape[0]:
            return llr.new_zeros(*lead, self._k), torch.ones(lead, dtype=torch.bool, device=llr.device)
        parts = [self._decode_chunk(part) for part in llr.split(self.decode_chunk or llr.shape[0])]
        bits = torch.cat([p[0] for p in parts]).reshape(*lead, self._k)
        return bits, torch.cat([p[1] for p in parts]).reshape(lead)

    def _syndrome_ok(self, x_hat: torch.Tensor) -> torch.Tensor:
        """``[C, num_vns]`` decoder estimates → ``[C]`` bool: every parity check holds for the
        hard decisions (Sionna's: bit 1 where the LLR ``log(p(0)/p(1))`` is ``<= 0``)."""
        checks = torch.sparse.mm(self._pcm, (x_hat <= 0).to(torch.float32).T)  # [num_cns, C], exact
        return ~(checks.remainder(2) > 0.5).any(dim=0)

    def _decode_chunk(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.tuner is None:
            return self._bp(llr)[:2]
        with self.tuner.threads() as run:
            out, ok, iterations = self._bp(llr)
            run.work = iterations * self.decoder.num_edges  # comparable across codes
        return out, ok

    def _bp(self, llr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
        """``[C, n]`` LLRs → (``[C, k]`` decisions, ``[C]`` parity checks hold, codeword-iterations run)."""
        if not self.early_stop:
            self.iterations_run += llr.shape[0] * self.num_bp_iter
            bits = self.decoder(llr)[0]
            ok = self._syndrome_ok(self._estimate.x_hat)
            self._estimate.x_hat = None
            return bits, ok, llr.shape[0] * self.num_bp_iter
        out = llr.new_empty(llr.shape[0], self._k)
        passed = torch.zeros(llr.shape[0], dtype=torch.bool, device=llr.device)
        active = torch.arange(llr.shape[0], device=llr.device)
        state, done, work = None, 0, 0
        while True:
            step = min(self.check_every, self.num_bp_iter - done)
            bits, state = self.decoder(llr, num_iter=step, msg_v2c=state)
            done, work = done + step, work + step * llr.shape[0]
            ok = self._syndrome_ok(self._estimate.x_hat)
            if done == self.num_bp_iter:
                out[active], passed[active] = bits, ok
                break
            out[active[ok]] = bits[ok]
            passed[active[ok]] = True
            if ok.all():
                break
            keep = ~ok
            active, llr, state = active[keep], llr[keep], state[keep]
        self._estimate.x_hat = None
        self.iterations_run += work
        return out, passed, work

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
        return (f"mcs={self.mcs.name}, k={self._k}, n={self._n}, num_bp_iter={self.num_bp_iter}, "
                f"early_stop={self.early_stop}")


def bytes_to_bits(data: bytes) -> np.ndarray:
    """Bytes → ``[8 len(data)]`` uint8 bits, most significant bit first."""
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


def bits_to_bytes(bits: np.ndarray | torch.Tensor) -> bytes:
    """``[L]`` bits (0/1, any numeric dtype), MSB first → bytes; a partial last byte is padded
    with zeros."""
    if isinstance(bits, torch.Tensor):
        bits = bits.detach().cpu().numpy()
    return np.packbits(np.asarray(bits).reshape(-1).astype(np.uint8) & 1).tobytes()
