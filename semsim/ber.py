"""Bit and block error rates of the digital link over any registered channel, and closed forms.

:func:`simulate_ber` measures BER and BLER of one MCS at one SNR by Monte Carlo: Sionna's
``BinarySource`` draws the information bits, :class:`~semsim.digital.DigitalLink` codes and maps
them, and the channel (AWGN, fading, TDL-OFDM, …) carries them. The symbols of
``codewords_per_row`` codewords form one channel row (one "image" frame), so the channel's
per-row power normalisation sees thousands of symbols and leaves the constellation essentially
untouched. The SNR is Es/N0 per complex symbol, as everywhere in semsim; the row also reports
``Eb/N0 = Es/N0 - 10 log10(m r)`` per information bit.

The closed forms (:func:`ber_qam_awgn`, :func:`ber_qpsk_rayleigh`, :func:`ber_qpsk_rician`,
:func:`ber_qam_rayleigh`)
are the references for the tests and the plots.

Example::

    >>> from semsim.ber import simulate_ber, ber_qam_awgn
    >>> row = simulate_ber("awgn", "qpsk-uncoded", 6.0, min_errors=200, seed=1)
    >>> abs(row["ber"] / ber_qam_awgn("qpsk", 6.0) - 1) < 0.2
    True
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from . import metrics
from .digital import MCS, DigitalLink, parse_mcs
from .errors import ConfigError, choices

#: Default codewords per channel row: 16 codewords of n = 1944 are 5184 (64QAM) to 15552 (QPSK)
#: symbols, enough that per-row power normalisation barely moves the constellation.
CODEWORDS_PER_ROW = 16


def _default_batch(link: DigitalLink, codewords_per_row: int) -> int:
    if link.decoder is not None:
        batch = 64  # Sionna's BP decoder gets slower per codeword in larger CPU batches
    else:
        # Cap the bits per batch and the demapper's [symbols, M] distance table.
        points = 2 ** link.num_bits_per_symbol
        batch = min(2**22 // link.n, 2**24 // (points * link.symbols_per_codeword))
    return max(codewords_per_row, batch // codewords_per_row * codewords_per_row)


def simulate_ber(channel: Any, mcs: MCS | str, snr_db: float, *, max_bits: int = 10**8,
                 min_errors: int = 1000, max_blocks: int | None = None,
                 batch_codewords: int | None = None, codewords_per_row: int = CODEWORDS_PER_ROW,
                 codeword_length: int = 1944, num_bp_iter: int = 20,
                 seed: int | None = None) -> dict[str, Any]:
    """BER and BLER of ``mcs`` over ``channel`` at Es/N0 ``snr_db``, by Monte Carlo.

    Batches of ``batch_codewords`` codewords are sent until at least ``min_errors`` bit errors
    were counted, or ``max_bits`` information bits (or ``max_blocks`` codewords) were sent; the
    batch that crosses a limit is counted whole.

    :param channel: a :class:`~semsim.channels.Channel`, or a spec (``"awgn"``,
        ``{"name": "rayleigh", "block_length": 1}``).
    :param mcs: an :class:`~semsim.digital.MCS` or its name (``"16qam-1/2"``, ``"qpsk-uncoded"``).
    :param snr_db: Es/N0 per complex symbol, dB.
    :param codewords_per_row: codewords per channel row (one frame, power-normalised alone).
    :param seed: reseeds every generator (:func:`semsim.config.seed_everything`) first.
    :returns: a plain dict: ``channel, mcs, modulation, code_rate, snr_db, ebno_db, bits,
        bit_errors, ber, blocks, block_errors, bler, seconds`` (``code_rate`` is ``"1/2"`` or
        ``"uncoded"``; a block is one codeword of ``k`` information bits).
    """
    from sionna.phy.mapping import BinarySource

    from .channels import build_channel
    from .config import seed_everything

    if isinstance(channel, (str, Mapping)):
        channel = build_channel(channel)
    mcs = parse_mcs(mcs)
    for key, val in (("max_bits", max_bits), ("min_errors", min_errors),
                     ("codewords_per_row", codewords_per_row)):
        if isinstance(val, bool) or not isinstance(val, int) or val < 1:
            raise ConfigError(f"{key} must be a positive integer, got {val!r}")
    if seed is not None:
        seed_everything(seed)
    link = DigitalLink(mcs, codeword_length=codeword_length, num_bp_iter=num_bp_iter)
    if batch_codewords is None:
        batch_codewords = _default_batch(link, codewords_per_row)
    batch_codewords = -(-int(batch_codewords) // codewords_per_row) * codewords_per_row
    source = BinarySource()

    start = time.perf_counter()
    bits = bit_errors = blocks = block_errors = 0
    with torch.no_grad():
        while bit_errors < min_errors and bits < max_bits and (max_blocks is None or blocks < max_blocks):
            u = source([batch_codewords, link.k])
            u_hat, _ = link.send(u, channel, snr_db, rows=batch_codewords // codewords_per_row)
            bit_errors += metrics.bit_errors(u, u_hat)[0]
            block_errors += metrics.block_errors(u, u_hat)[0]
            bits += u.numel()
            blocks += batch_codewords
    seconds = time.perf_counter() - start
    return {
        "channel": getattr(channel, "name", type(channel).__name__),
        "mcs": mcs.name,
        "modulation": mcs.modulation,
        "code_rate": mcs.rate_label,
        "snr_db": float(snr_db),
        "ebno_db": float(snr_db) - 10.0 * math.log10(mcs.spectral_efficiency),
        "bits": bits,
        "bit_errors": bit_errors,
        "ber": bit_errors / bits,
        "blocks": blocks,
        "block_errors": block_errors,
        "bler": block_errors / blocks,
        "seconds": seconds,
    }


# --- closed forms -----------------------------------------------------------------------------
_ORDER = {"qpsk": 4, "16qam": 16, "64qam": 64}


def ber_qam_awgn(modulation: str, snr_db: float | np.ndarray) -> float | np.ndarray:
    """Exact BER of Gray-coded square M-QAM over AWGN with nearest-point detection.

    Cho & Yoon, "On the general BER expression of one- and two-dimensional amplitude
    modulations", IEEE Trans. Commun. 50(7), 2002, eqs. (14)-(16), written in Es/N0
    (``log2(M) Eb/N0 = Es/N0``)::

        P_b = 1/log2(sqrt M) * sum_{k=1}^{log2 sqrt M} P_b(k)
        P_b(k) = 1/sqrt M * sum_{i=0}^{(1-2^-k) sqrt M - 1} (-1)^floor(i 2^(k-1)/sqrt M)
                 * (2^(k-1) - floor(i 2^(k-1)/sqrt M + 1/2)) * erfc((2i+1) sqrt(3 Es/N0 / (2(M-1))))

    :param modulation: ``"qpsk"``, ``"16qam"`` or ``"64qam"``.
    :param snr_db: Es/N0 per complex symbol in dB (scalar or array).
    :returns: BER, same shape as ``snr_db``.
    """
    from scipy.special import erfc

    if modulation not in _ORDER:
        raise ConfigError(f"unknown modulation {modulation!r}; valid choices: {choices(_ORDER)}")
    big_m = _ORDER[modulation]
    root = math.isqrt(big_m)
    levels = int(math.log2(root))
    es_n0 = 10.0 ** (np.asarray(snr_db, dtype=np.float64) / 10.0)
    scale = np.sqrt(3.0 * es_n0 / (2.0 * (big_m - 1)))
    total = np.zeros_like(es_n0)
    for k in range(1, levels + 1):
        pk = np.zeros_like(es_n0)
        for i in range(int((1 - 2.0**-k) * root)):
            w = (i * 2 ** (k - 1)) // root
            weight = (-1) ** w * (2 ** (k - 1) - math.floor(i * 2 ** (k - 1) / root + 0.5))
            pk = pk + weight * erfc((2 * i + 1) * scale)
        total = total + pk / root
    out = total / levels
    return float(out) if out.ndim == 0 else out


def ber_qpsk_rayleigh(snr_db: float | np.ndarray) -> float | np.ndarray:
    """BER of Gray QPSK over i.i.d. Rayleigh fading with coherent detection (perfect CSI).

    Each bit sees BPSK at ``Eb/N0 = Es/(2 N0)``: ``BER = (1 - sqrt(g/(1+g))) / 2``, ``g = Es/(2N0)``.

    :param snr_db: average Es/N0 per complex symbol in dB.
    """
    g = 10.0 ** (np.asarray(snr_db, dtype=np.float64) / 10.0) / 2.0
    out = 0.5 * (1.0 - np.sqrt(g / (1.0 + g)))
    return float(out) if out.ndim == 0 else out


def ber_qpsk_rician(snr_db: float | np.ndarray, k_db: float) -> float | np.ndarray:
    """BER of Gray QPSK over i.i.d. Rician fading (K factor ``k_db``, ``E|h|^2 = 1``) with perfect
    CSI, by Craig's formula and the Rician moment generating function (Simon & Alouini, eq. 8.22):

    ``BER = (1/pi) int_0^{pi/2} (1+K) s / ((1+K) s + g) exp(-K g / ((1+K) s + g)) dtheta``,
    ``s = sin^2 theta``, ``g = Es/(2 N0)``. ``K -> 0`` gives :func:`ber_qpsk_rayleigh`.

    :param snr_db: average Es/N0 per complex symbol in dB.
    :param k_db: Rician K factor (line-of-sight to scattered power) in dB.
    """
    from scipy.integrate import quad

    k = 10.0 ** (k_db / 10.0)

    def one(s_db: float) -> float:
        g = 10.0 ** (s_db / 10.0) / 2.0

        def integrand(theta: float) -> float:
            s = math.sin(theta) ** 2
            a = (1 + k) * s + g
            return (1 + k) * s / a * math.exp(-k * g / a)

        return quad(integrand, 0.0, math.pi / 2, epsabs=1e-14)[0] / math.pi

    out = np.vectorize(one)(np.asarray(snr_db, dtype=np.float64))
    return float(out) if out.ndim == 0 else out


def ber_qam_rayleigh(modulation: str, snr_db: float | np.ndarray) -> float | np.ndarray:
    """BER of Gray square QAM over i.i.d. Rayleigh fading with perfect CSI, by numerical
    integration of :func:`ber_qam_awgn` over the exponential distribution of ``|h|^2``.

    :param snr_db: average Es/N0 per complex symbol in dB.
    """
    from scipy.integrate import quad

    def one(s: float) -> float:
        snr = 10.0 ** (s / 10.0)

        def integrand(g: float) -> float:
            return ber_qam_awgn(modulation, 10.0 * math.log10(max(g * snr, 1e-300))) * math.exp(-g)

        return quad(integrand, 0.0, np.inf, limit=200, epsabs=1e-12)[0]

    arr = np.asarray(snr_db, dtype=np.float64)
    out = np.vectorize(one)(arr)
    return float(out) if out.ndim == 0 else out
