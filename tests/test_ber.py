"""BER/BLER of the Sionna digital link against closed forms (semsim.ber, semsim.digital)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
import torch
from scipy.stats import norm

from semsim.ber import ber_qam_awgn, ber_qam_rayleigh, ber_qpsk_rayleigh, ber_qpsk_rician, simulate_ber
from semsim.channels import build_channel
from semsim.digital import (MCS, MCS_TABLE, MODULATIONS, DigitalLink, ThreadTuner, bits_to_bytes,
                            bytes_to_bits, parse_mcs)
from semsim.errors import ConfigError

AWGN_SNRS_DB = (0.0, 3.0, 6.0, 9.0, 12.0)


# --- closed forms -------------------------------------------------------------------------------
def test_qpsk_closed_form_is_q_of_sqrt_snr():
    for snr_db in (0.0, 7.0, 12.0):
        assert ber_qam_awgn("qpsk", snr_db) == pytest.approx(norm.sf(np.sqrt(10 ** (snr_db / 10))), rel=1e-12)


def test_qpsk_rician_closed_form_limits_and_monte_carlo():
    """K -> 0 is Rayleigh, K -> infinity is AWGN, and at K = 9 dB it matches a direct average of
    Q(sqrt(2 g |h|^2)) over 10^6 Rician draws (standard error about 0.5 %)."""
    from scipy.special import erfc

    for snr_db in (0.0, 10.0, 20.0):
        assert ber_qpsk_rician(snr_db, -60.0) == pytest.approx(ber_qpsk_rayleigh(snr_db), rel=1e-5)
        assert ber_qpsk_rician(snr_db, 60.0) == pytest.approx(ber_qam_awgn("qpsk", snr_db), rel=1e-4)
    rng = np.random.default_rng(0)
    k = 10 ** 0.9
    h = np.sqrt(k / (k + 1)) + np.sqrt(0.5 / (k + 1)) * (rng.standard_normal(10**6) + 1j * rng.standard_normal(10**6))
    mc = np.mean(0.5 * erfc(np.sqrt(5.0 * np.abs(h) ** 2)))
    assert ber_qpsk_rician(10.0, 9.0) == pytest.approx(mc, rel=0.02)


def test_square_qam_closed_form_matches_nearest_neighbour_limit():
    # At high SNR Gray M-QAM tends to 4/log2(M) (1 - 1/sqrt(M)) Q(sqrt(3 Es/N0 / (M-1))).
    for mod, m in (("16qam", 16), ("64qam", 64)):
        snr = 10 ** (22.0 / 10)
        approx = 4 / np.log2(m) * (1 - 1 / np.sqrt(m)) * norm.sf(np.sqrt(3 * snr / (m - 1)))
        assert ber_qam_awgn(mod, 22.0) == pytest.approx(approx, rel=0.02)


def test_qpsk_rayleigh_closed_form_matches_integral():
    for snr_db in (0.0, 10.0, 20.0):
        assert ber_qpsk_rayleigh(snr_db) == pytest.approx(ber_qam_rayleigh("qpsk", snr_db), rel=1e-6)


# --- MCS ----------------------------------------------------------------------------------------
def test_mcs_table_and_names():
    assert MODULATIONS == ("qpsk", "16qam", "64qam")
    assert [m.name for m in MCS_TABLE] == ["qpsk-1/3", "qpsk-1/2", "qpsk-2/3", "16qam-1/2", "16qam-2/3",
                                           "64qam-1/2", "64qam-2/3", "64qam-3/4"]
    assert parse_mcs("16QAM r=1/2") == MCS("16qam", Fraction(1, 2))
    assert parse_mcs("qam64 3/4").num_bits_per_symbol == 6
    assert parse_mcs("QPSK uncoded").name == "qpsk-uncoded"
    with pytest.raises(ConfigError, match="valid choices"):
        parse_mcs("8psk-1/2")
    with pytest.raises(ConfigError):
        parse_mcs("16qam")


def test_bits_bytes_roundtrip_msb_first():
    bits = bytes_to_bits(b"\x80\x01")
    assert bits.tolist() == [1] + [0] * 14 + [1]
    assert bits_to_bytes(bits) == b"\x80\x01"


def test_link_shapes_and_noiseless_roundtrip(device):
    for mcs in MCS_TABLE + (parse_mcs("64qam-uncoded"),):
        link = DigitalLink(mcs)
        assert link.k == int(1944 * mcs.rate) and link.n == 1944
        bits = torch.randint(0, 2, (3, link.k), dtype=torch.float32)
        x = link.encode(bits)
        assert x.shape == (3, 1944 // mcs.num_bits_per_symbol) and x.dtype == torch.complex64
        assert x.device.type == torch.device(device).type
        out = link.decode(x, 1e-3)
        assert out.dtype == torch.float32 and torch.equal(out.cpu(), bits)


# --- early termination ---------------------------------------------------------------------------
@pytest.fixture
def one_thread():
    """Sionna's BP decoder on one torch thread: two are far slower on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("snr_db", (1.0, 2.0, 10.0))
def test_early_stop_decides_as_full_decoding(snr_db, one_thread):
    """QPSK-1/2, n = 1944 over AWGN: Es/N0 = 1 dB is the waterfall (BLER about 1/2), 2 dB just
    above it (error-free, about 10 iterations), 10 dB far above (1-2 iterations). The early-stopped
    decisions equal Sionna's decoder run for all 20 iterations on the same LLRs."""
    from sionna.phy.fec.ldpc import LDPC5GDecoder

    c = 48
    link = DigitalLink("qpsk-1/2", decode_chunk=16, decode_threads=None)
    full = LDPC5GDecoder(link.encoder, hard_out=True, num_iter=20)
    bits = torch.randint(0, 2, (c, link.k)).float()
    y, info = build_channel("awgn")(link.encode(bits).reshape(3, -1), snr_db)
    llr = link.llr(y.reshape(c, -1), info.no.reshape(c, -1))
    with torch.no_grad():
        early, reference = link.decode_llr(llr), full(llr)
    assert torch.equal(early, reference)
    bler = float((early != bits).any(dim=1).float().mean())
    iterations = link.iterations_run / c
    if snr_db == 1.0:
        assert 0.1 < bler < 0.9 and 10 < iterations < 20, (bler, iterations)
    elif snr_db == 2.0:
        assert bler == 0.0 and 4 < iterations < 16, iterations
    else:
        assert bler == 0.0 and iterations <= 3, iterations


def test_early_stop_runs_until_the_syndrome_holds(one_thread):
    link = DigitalLink("16qam-1/2", decode_threads=None)
    bits = torch.randint(0, 2, (4, link.k)).float()
    assert torch.equal(link.decode(link.encode(bits), 1e-3), bits)
    assert link.iterations_run == 4  # a clean codeword: one iteration each
    noise = torch.randn(4, link.n)
    link.decode_llr(noise)
    assert link.iterations_run == 4 + 4 * 20  # never a codeword: every iteration
    full = DigitalLink("16qam-1/2", early_stop=False, decode_threads=None)
    assert torch.equal(full.decode_llr(noise), link.decode_llr(noise))
    assert full.iterations_run == 4 * 20
    assert link.decode_llr(noise.reshape(2, 2, -1)).shape == (2, 2, link.k)
    with pytest.raises(ConfigError, match="check_every"):
        DigitalLink("16qam-1/2", check_every=0)


def test_thread_tuner_keeps_the_faster_count_and_probes_again():
    def picks(timings, calls):
        tuner = ThreadTuner((1, 2), probes=2, every=3)
        out = []
        for _ in range(calls):
            out.append(tuner.pick())
            tuner.record(out[-1], timings[out[-1]])
        return out, tuner

    # probe 1, 2, 1, 2; then the faster (2) for `every` calls; then probe again
    seen, tuner = picks({1: 1.5, 2: 1.0}, 9)
    assert seen == [1, 2, 1, 2, 2, 2, 2, 1, 2] and tuner.choice == 2
    # more than twice as slow after one try: not tried again
    seen, tuner = picks({1: 1.0, 2: 3.0}, 4)
    assert seen == [1, 2, 1, 1] and tuner.choice == 1
    before = torch.get_num_threads()
    with tuner.threads() as run:
        assert torch.get_num_threads() == tuner.pick()
        run.work = 1
    assert torch.get_num_threads() == before


# --- Monte Carlo against theory -----------------------------------------------------------------
@pytest.mark.parametrize("modulation", MODULATIONS)
def test_uncoded_awgn_matches_closed_form(modulation):
    for snr_db in AWGN_SNRS_DB:
        row = simulate_ber("awgn", f"{modulation}-uncoded", snr_db, min_errors=1000, seed=7)
        theory = ber_qam_awgn(modulation, snr_db)
        assert row["bit_errors"] >= 1000, row
        assert row["ber"] == pytest.approx(theory, rel=0.10), (snr_db, row["ber"], theory)
        assert row["code_rate"] == "uncoded" and row["channel"] == "awgn"


def test_uncoded_qpsk_rayleigh_matches_closed_form():
    channel = {"name": "rayleigh", "block_length": 1}
    for snr_db in (0.0, 10.0, 20.0):
        row = simulate_ber(channel, "qpsk-uncoded", snr_db, min_errors=1000, seed=3)
        assert row["bit_errors"] >= 1000
        assert row["ber"] == pytest.approx(ber_qpsk_rayleigh(snr_db), rel=0.10), (snr_db, row["ber"])


def test_ldpc_gain_over_uncoded():
    # 16QAM r=1/2 has its waterfall near Es/N0 = 6 dB with n = 1944; at 8 dB it is error-free
    # while uncoded 16QAM loses about 10 % of its bits.
    coded = simulate_ber("awgn", "16qam-1/2", 8.0, max_blocks=64, min_errors=10**9, seed=1)
    uncoded = simulate_ber("awgn", "16qam-uncoded", 8.0, seed=1)
    assert uncoded["ber"] > 0.05
    assert coded["bits"] >= 64 * 972
    assert coded["ber"] < uncoded["ber"] / 100
    assert coded["ebno_db"] == pytest.approx(8.0 - 10 * np.log10(2.0))


def test_bler_decreases_with_snr():
    snrs = (5.0, 5.5, 6.0, 6.5, 7.5)
    bler = [simulate_ber("awgn", "16qam-1/2", s, max_blocks=96, min_errors=10**9, seed=2)["bler"]
            for s in snrs]
    assert all(a >= b for a, b in zip(bler, bler[1:])), bler
    assert bler[0] > 0.5 and bler[-1] < 0.05, bler


def test_docstring_examples():
    import doctest

    import semsim.ber
    import semsim.digital

    for module in (semsim.digital, semsim.ber):
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.attempted > 0 and result.failed == 0, module.__name__
