"""Channel conventions: SNR = Es/N0 with no = 10^(-snr/10), unit power per image, CSI, seeding,
differentiability, ergodic capacity, and clear errors for bad options."""
import math

import pytest
import torch
from scipy.special import exp1

from semsim.channels import build_channel, normalize_power, snr_db_to_no
from semsim.config import seed_everything
from semsim.errors import ConfigError

FADING = ["rayleigh", "rician"]
TDL = ["tdl-a", "tdl-b", "tdl-c", "tdl-d", "tdl-e"]


def _qpsk(b, n):
    """``[b, n]`` unit-power QPSK symbols on the current device."""
    from semsim.config import get_device

    bits = torch.randint(0, 2, (b, n, 2)).float()
    x = ((1 - 2 * bits[..., 0]) + 1j * (1 - 2 * bits[..., 1])).to(torch.complex64) / math.sqrt(2)
    return x.to(get_device())


def _measured_snr_db(spec, snr_db, b=8, n=30_000):
    """Average over fading realisations: with b x n symbols the mean channel energy is known to
    about 1/sqrt(number of independent realisations)."""
    """Send unit-power symbols, recover the noise as y - h x, return the per-row measured SNR in dB."""
    ch = build_channel(spec)
    x = _qpsk(b, n)
    y, info = ch(x, snr_db)
    hx = x if info.h is None else info.h * x
    noise = y - hx
    sig = hx.abs().square().mean()  # average over realisations: E|h|^2 = 1
    return 10 * torch.log10(sig / noise.abs().square().mean(1)), info


@pytest.mark.parametrize("spec", [
    "awgn",
    {"name": "rayleigh", "equalize": False, "block_length": 1},
    {"name": "rician", "equalize": False, "block_length": 1, "k_db": 3.0},
] + [{"name": t, "equalizer": "none", "speed": 0.0, "fft_size": 16, "fading": "per_slot"} for t in TDL],
    ids=lambda s: s if isinstance(s, str) else s["name"])
def test_measured_snr_matches_request(spec, device):
    # TDL slots fade as a whole (about one independent gain per 16-subcarrier slot), so those
    # channels need ~10^4 independent slots (per_slot fading) for the average channel energy to
    # settle within 0.1 dB.
    b = 8 if isinstance(spec, str) or not spec["name"].startswith("tdl") else 64
    for snr in (-5.0, 0.0, 10.0, 25.0):
        measured, info = _measured_snr_db(spec, snr, b=b)
        assert torch.allclose(info.no, torch.full_like(info.no, 10 ** (-snr / 10)))
        assert (measured.mean() - snr).abs() < 0.1, (spec, snr, measured)


def test_per_example_snr(device):
    snr = torch.tensor([0.0, 10.0, 20.0, 30.0])
    measured, info = _measured_snr_db("awgn", snr.to(device), b=4, n=100_000)
    assert torch.all((measured.cpu() - snr).abs() < 0.1)
    assert torch.allclose(info.no.cpu(), 10 ** (-snr[:, None] / 10))


def test_snr_to_no():
    assert float(snr_db_to_no(0.0)) == pytest.approx(1.0)
    assert float(snr_db_to_no(10.0)) == pytest.approx(0.1)
    assert float(snr_db_to_no(-3.0)) == pytest.approx(10 ** 0.3)


@pytest.mark.parametrize("name", ["awgn", "rayleigh", "rician", "tdl-a"])
def test_unit_power_per_image(name, device):
    """Images of very different scales each leave the transmitter with power 1 ± 1e-4."""
    scales = torch.tensor([1e-4, 1e-1, 1.0, 37.0, 1e4]).reshape(-1, 1)
    x = (torch.randn(5, 4096, dtype=torch.complex64) * scales).to(device)
    p = normalize_power(x).abs().square().mean(1)
    assert torch.all((p - 1).abs() < 1e-4)
    # and the channel applies it: at 60 dB over AWGN the received power is the transmitted one
    if name == "awgn":
        y, _ = build_channel("awgn")(x, 60.0)
        assert torch.all((y.abs().square().mean(1) - 1).abs() < 1e-4 + 3e-6)


def test_power_normalisation_is_per_image_not_per_batch():
    x = torch.randn(2, 1000, dtype=torch.complex64)
    x[1] *= 100
    y, _ = build_channel("awgn")(x, 60.0)
    ratio = y[1].abs().square().mean() / y[0].abs().square().mean()
    assert ratio == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("spec", ["awgn", "rayleigh", {"name": "rayleigh", "equalize": False},
                                  "rician", "tdl-a", {"name": "tdl-c", "csi": "ls"}],
                         ids=str)
def test_differentiable(spec, device):
    ch = build_channel(spec)
    x = torch.randn(2, 3000, dtype=torch.complex64, device=device, requires_grad=True)
    y, info = ch(x, torch.tensor([5.0, 15.0], device=device))
    y.real.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


@pytest.mark.parametrize("spec", ["awgn", "rayleigh", "tdl-b"])
def test_seeding_reproducible(spec, device):
    ch = build_channel(spec)
    x = _qpsk(2, 2000)
    seed_everything(7)
    y1, _ = ch(x, 5.0)
    seed_everything(7)
    y2, _ = ch(x, 5.0)
    seed_everything(8)
    y3, _ = ch(x, 5.0)
    assert torch.equal(y1, y2)
    assert not torch.allclose(y1, y3)


def test_rayleigh_block_structure():
    ch = build_channel({"name": "rayleigh", "equalize": False, "block_length": 100})
    _, info = ch(_qpsk(3, 1000), 10.0)
    h = info.h.reshape(3, 10, 100)
    assert torch.allclose(h, h[..., :1].expand_as(h))
    assert not torch.allclose(h[:, 0], h[:, 1])
    _, info = build_channel({"name": "rayleigh", "equalize": False})(_qpsk(3, 1000), 10.0)
    assert torch.allclose(info.h, info.h[:, :1].expand_as(info.h)), "default: one gain per image"
    assert not torch.allclose(info.h[0], info.h[1])


def test_rayleigh_equalised_noise_is_effective_no():
    ch = build_channel({"name": "rayleigh", "block_length": 1})
    x = _qpsk(4, 50_000)
    y, info = ch(x, 10.0)
    assert info.equalized
    z = (y - x) / info.no.sqrt()  # whitened post-equalisation noise has unit variance
    assert z.abs().square().mean().item() == pytest.approx(1.0, rel=0.02)


def test_no_csi_hides_h():
    _, info = build_channel({"name": "rayleigh", "csi": False, "equalize": False})(_qpsk(1, 100), 3.0)
    assert info.h is None


@pytest.mark.parametrize("csi", ["perfect", "ls"])
def test_tdl_equalisation_recovers_symbols(csi):
    # per_slot: two images of a static continuous channel would be only two draws
    ch = build_channel({"name": "tdl-a", "csi": csi, "speed": 0.0, "fading": "per_slot"})
    x = _qpsk(2, 5000)
    y, info = ch(x, 30.0)
    assert info.equalized and info.overhead > 0
    err = (y - x).abs().square()
    assert err.median().item() < 0.01, err.median()  # deep fades aside, the symbols come back
    # the effective noise variance the receiver gets tracks the real error, deep fades included
    assert err.mean().item() == pytest.approx(info.no.mean().item(), rel=0.5)


@pytest.mark.parametrize("fading", ["continuous", "per_slot"])
def test_tdl_time_correlation_follows_jakes(fading):
    """Continuous fading: E[h(t) h*(t+dt)] / E|h|^2 = J0(2 pi f_D dt) across slot boundaries.

    30 m/s at 3.5 GHz gives f_D = 350 Hz; lags of one and one and a half slots (14 and 21 OFDM
    symbols of 35.4 us) give J0 = 0.72 and 0.44. 2,000 images of 3 slots measure it to about 0.01
    (seeds 0-4: within 0.011, Sionna's finite sum of sinusoids included), so 0.04 is about four
    standard errors; a 20 % speed error moves J0 at lag 21 by 0.2. Independent slots give 0.
    """
    from scipy.special import j0

    seed_everything(3)
    speed, fc = 30.0, 3.5e9
    ch = build_channel({"name": "tdl-a", "speed": speed, "carrier_frequency": fc, "fading": fading,
                        "fft_size": 16, "cyclic_prefix_length": 1, "delay_spread": 30e-9})
    b, slots, t = 2000, 3, 14
    h = ch.generate(b, slots).reshape(b, slots * t, 16)
    power = h.abs().square().mean()
    assert power.item() == pytest.approx(1.0, abs=0.1)
    f_d = speed * fc / 299_792_458.0
    for lag in (14, 21):
        corr = ((h[:, lag:] * h[:, :-lag].conj()).mean().real / power).item()
        want = j0(2 * math.pi * f_d * lag * ch.rg.ofdm_symbol_duration)
        assert 0.2 < want < 0.8
        if fading == "continuous":
            assert corr == pytest.approx(want, abs=0.04), (lag, corr, want)
        else:
            assert abs(corr) < 0.05, (lag, corr)


def test_tdl_overhead_counts_pilots_and_cp():
    ch = build_channel({"name": "tdl-a", "fft_size": 64, "cyclic_prefix_length": 4})
    d = 12 * 64  # 14 OFDM symbols, 2 of them pilots
    assert ch.data_per_slot == d
    n = 3 * d - 10
    assert ch.overhead(n) == 3 * (14 * 64 + 14 * 4) - n
    _, info = ch(_qpsk(1, n), 10.0)
    assert info.overhead == ch.overhead(n)


def test_capacity():
    assert build_channel("awgn").capacity(10.0) == pytest.approx(math.log2(11.0))
    g = 10.0
    closed = math.exp(1 / g) * exp1(1 / g) / math.log(2)
    assert build_channel("rayleigh").capacity(10.0) == pytest.approx(closed, rel=0.01)
    assert build_channel("rician").capacity(10.0) > closed  # line of sight helps
    assert build_channel("tdl-a").capacity(10.0) < math.log2(11.0)


@pytest.mark.parametrize("spec, words", [
    ("nosuch", ["unknown channel 'nosuch'", "'awgn'", "'tdl-e'"]),
    ({"name": "awgn", "blocklength": 4}, ["unknown option", "blocklength"]),
    ({"name": "rayleigh", "block_length": 4, "foo": 1}, ["foo", "block_length"]),
    ({"name": "rayleigh", "csi": False, "equalize": True}, ["equalize", "csi"]),
    ({"name": "rayleigh", "block_length": 0}, ["block_length"]),
    ({"name": "tdl-a", "csi": "mmse"}, ["'perfect'", "'ls'"]),
    ({"name": "tdl-a", "equalizer": "zf"}, ["'lmmse'", "'none'"]),
    ({"name": "tdl-a", "fading": "block"}, ["'continuous'", "'per_slot'"]),
    ({"name": "cdl-a", "ut_array": [1, 2]}, ["ut_array", "mapping"]),
    ({"name": "cdl-b", "ut_array": {"polarization": "circular"}}, ["antenna array", "circular"]),
    ({"name": "cdl-c", "direction": "up"}, ["'downlink'", "'uplink'"]),
    ({"name": "cdl-d", "ut_array": {"num_rows_per_panel": 2}, "equalizer": "none"}, ["lmmse"]),
])
def test_bad_channel_options(spec, words):
    with pytest.raises(ConfigError) as e:
        build_channel(spec)
    for w in words:
        assert w in str(e.value)


CDL = ["cdl-a", "cdl-b", "cdl-c", "cdl-d", "cdl-e"]
# The flat limit of CDL: a 1 ns delay spread and one omnidirectional antenna at each end make every
# slot one complex gain, drawn independently per slot (per_slot, speed 0).
CDL_FLAT = {"delay_spread": 1e-9, "speed": 0.0, "fading": "per_slot", "fft_size": 16,
            "num_ofdm_symbols": 2, "pilot_ofdm_symbol_indices": [0], "cyclic_prefix_length": 0}


@pytest.mark.parametrize("name", CDL)
def test_cdl_measured_snr_and_unit_gain(name, device):
    """8,000 independent slots, half at -5 dB and half at 15 dB: E|h|^2 = 1 within 0.035 (three
    standard errors), and the SNR measured from the noise y - h x within 0.1 dB of the request."""
    seed_everything(11)
    ch = build_channel({"name": name, **CDL_FLAT, "equalizer": "none"})
    snr = torch.tensor([-5.0, 15.0]).repeat_interleave(4000)
    x = _qpsk(8000, 16)
    y, info = ch(x, snr.to(device))
    assert info.overhead == 16
    assert torch.allclose(info.no.cpu(), (10 ** (-snr / 10)).unsqueeze(-1).expand(-1, 16))
    hx = info.h * x
    gain = info.h.abs().square().mean().item()
    assert gain == pytest.approx(1.0, abs=0.035), gain
    noise = (y - hx).abs().square().reshape(2, -1).mean(1).cpu()
    measured = 10 * torch.log10(1 / noise)  # signal power E|h x|^2 = 1, checked above
    assert torch.allclose(measured, torch.tensor([-5.0, 15.0]), atol=0.1), measured


@pytest.mark.parametrize("name, k_db", [("cdl-a", None), ("cdl-b", None), ("cdl-c", None),
                                        ("cdl-d", 8.98), ("cdl-e", 9.27)])
def test_cdl_flat_limit_ber_matches_rayleigh_and_rician(name, k_db, device):
    """Uncoded QPSK, perfect CSI, LMMSE, 10 dB: Rayleigh for the NLOS profiles, Rician for the LOS
    ones. The Rician K is the specular power over the total NLOS power of the TR 38.901 table
    (CDL-D 8.98 dB, CDL-E 9.27 dB), not the nominal 13.3 and 22 dB, which count only the first
    NLOS cluster. 4,000 slots of 32 bits give standard errors of 3 % (Rayleigh) and 5 % (Rician);
    nominal K values would be 65 % and 85 % off."""
    from semsim.ber import ber_qpsk_rayleigh, ber_qpsk_rician

    seed_everything(5)
    ch = build_channel({"name": name, **CDL_FLAT})
    if k_db is not None:
        assert 10 * math.log10(float(ch._model._k_factor)) == pytest.approx(k_db, abs=0.01)
    bits = torch.randint(0, 2, (4000, 16, 2))
    x = ((1 - 2 * bits[..., 0]) + 1j * (1 - 2 * bits[..., 1])).to(torch.complex64) / math.sqrt(2)
    y, info = ch(x.to(device), 10.0)
    errors = ((y.real.cpu() < 0) != (bits[..., 0] == 1)).float().mean() + \
        ((y.imag.cpu() < 0) != (bits[..., 1] == 1)).float().mean()
    ber = errors.item() / 2
    want = ber_qpsk_rayleigh(10.0) if k_db is None else ber_qpsk_rician(10.0, k_db)
    assert ber == pytest.approx(want, rel=0.15), (ber, want)


def test_cdl_receive_array():
    """Two receive antennas (two V elements half a wavelength apart at the UT) combine in the LMMSE
    equaliser: the reported gain is the combined one (E|h|^2 = 2) and the error drops; a transmit
    array is refused."""
    seed_everything(2)
    x = _qpsk(500, 16)
    out = {}
    for cols in (1, 2):
        ch = build_channel({"name": "cdl-a", **CDL_FLAT, "ut_array": {"num_cols_per_panel": cols}})
        y, info = ch(x, 5.0)
        out[cols] = ((y - x).abs().square().mean().item(), info.h.abs().square().mean().item())
    assert out[1][1] == pytest.approx(1.0, abs=0.15) and out[2][1] == pytest.approx(2.0, abs=0.3)
    assert out[2][0] < 0.6 * out[1][0], out
    with pytest.raises(ConfigError, match="one antenna"):
        build_channel({"name": "cdl-a", "bs_array": {"num_cols_per_panel": 2}})


@pytest.mark.parametrize("bandwidth, scs, num_rb, fft, guards", [
    (20e6, 30e3, 51, 1024, (206, 206)),
    (100e6, 30e3, 273, 4096, (410, 410)),
    (5e6, 15e3, 25, 512, (106, 106)),
    (40e6, 60e3, 51, 1024, (206, 206)),
])
def test_nr_grid_from_ts_38_101_1(bandwidth, scs, num_rb, fft, guards):
    from semsim.channels_ofdm import nr_grid

    assert nr_grid(bandwidth, scs) == (num_rb, fft, guards)


def test_default_grid_is_20_mhz_nr_carrier():
    ch = build_channel("tdl-a")
    d = ch.describe()
    assert (d["bandwidth"], d["num_rb"], d["fft_size"], d["cyclic_prefix_length"]) == (20e6, 51, 1024, 72)
    assert ch.data_per_slot == 12 * 612  # 14 OFDM symbols, 2 of them pilots, 612 used subcarriers
    n = 2 * ch.data_per_slot - 100
    # the used band (guard bands excluded) and its share of the cyclic prefix
    assert ch.overhead(n) == 2 * 14 * 612 + round(2 * 14 * 72 * 612 / 1024) - n
    x = _qpsk(1, n)
    y, info = ch(x, 50.0)  # guard bands carry nothing; the data come back
    assert info.overhead == ch.overhead(n) and (y - x).abs().square().median() < 1e-3
    # the explicit grid is still accepted, every subcarrier used
    ch = build_channel({"name": "cdl-b", "fft_size": 128})
    assert ch.describe()["cyclic_prefix_length"] == 9 and ch.data_per_slot == 12 * 128


@pytest.mark.parametrize("spec, words", [
    ({"name": "tdl-a", "bandwidth": 7e6}, ["7000000", "'5'", "'100'"]),
    ({"name": "tdl-a", "bandwidth": 20e6, "subcarrier_spacing": 120e3}, ["subcarrier_spacing", "'30000'"]),
    ({"name": "cdl-a", "bandwidth": 20e6, "fft_size": 128}, ["bandwidth", "fft_size"]),
    ({"name": "tdl-a", "ls_interpolation": "cubic"}, ["'lin'", "'nn'"]),
])
def test_bad_grid_options(spec, words):
    with pytest.raises(ConfigError) as e:
        build_channel(spec)
    for w in words:
        assert w in str(e.value)


def test_ls_linear_interpolation_tracks_a_moving_channel():
    """At 100 m/s (f_D = 1.2 kHz) the channel turns within a slot: linear interpolation between
    the pilot symbols 2 and 11 estimates it far better than the nearest pilot."""
    base = {"name": "tdl-a", "fft_size": 64, "speed": 100.0, "equalizer": "none"}
    x = _qpsk(4, 6000)
    mse = {}
    seed_everything(4)
    _, perfect = build_channel(base)(x, 30.0)
    for interp in ("lin", "nn"):
        seed_everything(4)  # the same channel draw
        _, info = build_channel({**base, "csi": "ls", "ls_interpolation": interp})(x, 30.0)
        mse[interp] = (info.h - perfect.h).abs().square().mean().item()
    assert mse["lin"] < 0.5 * mse["nn"], mse
