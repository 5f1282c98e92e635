"""Digital separation baselines: Pillow source coders over Sionna LDPC + QAM, and the capacity bound."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from semsim.baselines.separation import (FALLBACK_VALUE, SOURCE_CODERS, SourceDecodeError, from_uint8,
                                         to_uint8)
from semsim.channels import build_channel
from semsim.codec import Budget
from semsim.digital import MCS_TABLE
from semsim.errors import ConfigError
from semsim.metrics import psnr
from semsim.registry import build, names

CBR = Budget("cbr", 1 / 16)


def load_kodak(kodak_dir, name="kodim23", crop=None) -> torch.Tensor:
    """``[1, 3, H, W]`` float in [0, 1]; ``crop = (h, w)`` takes the top-left corner."""
    arr = np.array(Image.open(kodak_dir / f"{name}.png").convert("RGB"))
    if crop is not None:
        arr = arr[:crop[0], :crop[1]]
    return from_uint8(arr).unsqueeze(0)


def error_free_psnr(codec, image) -> float:
    """PSNR of the codec's rate control (quality and scale) for its budget, decoded without channel
    errors and upscaled to the image's size."""
    from semsim.baselines.source_coding import fit_scaled, upscale

    _, _, h, w = image.shape
    fitted = fit_scaled(codec.coder, to_uint8(image[0]), codec.max_info_bits(h, w), codec.scaling)
    decoded = upscale(codec.coder.decode(fitted.data, fitted.size), (h, w))
    return float(psnr(image, from_uint8(decoded).unsqueeze(0)))


def test_registered_names():
    assert {"jpeg+ldpc", "webp+ldpc", "avif+ldpc", "jpeg+capacity", "webp+capacity",
            "avif+capacity"} <= set(names("codec"))
    codec = build("codec", "webp+ldpc", budget=CBR)
    assert codec.axes == ("mcs",) and codec.display_name == "WebP+LDPC"
    assert codec.sweep_values() == {"mcs": [m.name for m in MCS_TABLE]}
    assert build("codec", {"name": "jpeg+ldpc", "mcs": ["qpsk-1/2"]}, budget=CBR).sweep_values() == \
        {"mcs": ["qpsk-1/2"]}
    with pytest.raises(ConfigError, match="valid choices"):
        build("codec", {"name": "jpeg+ldpc", "mcs": "8psk-1/2"}, budget=CBR)
    with pytest.raises(ConfigError):
        codec.with_axes(modulation="qpsk")
    assert build("codec", "avif+capacity", budget=CBR).axes == ()


def test_jpeg_ldpc_cliff_and_capacity_bound(kodak_dir):
    """Full-size kodim23, JPEG + LDPC 16QAM-1/2 at CBR 1/16 over AWGN (threshold near 6 dB)."""
    image = load_kodak(kodak_dir)
    _, _, h, w = image.shape
    channel = build_channel("awgn")
    codec = build("codec", "jpeg+ldpc", budget=CBR).with_axes(mcs="16qam-1/2")
    bound = build("codec", "jpeg+capacity", budget=CBR)
    clean = error_free_psnr(codec, image)
    assert clean > 30.0
    results = []
    for snr_db in (0.0, 4.0, 8.0, 12.0, 16.0):
        t = codec.transmit(image, channel, snr_db)
        b = bound.transmit(image, channel, snr_db)
        p, pb = float(psnr(image, t.output)), float(psnr(image, b.output))
        assert t.channel_uses[0] <= codec.max_channel_uses(h, w)
        assert t.extra["mcs"] == ["16qam-1/2"] and t.extra["code_rate"] == ["1/2"]
        assert t.bits[0] <= codec.max_info_bits(h, w)
        assert b.channel_uses == [codec.max_channel_uses(h, w)] and not b.failed[0]
        assert p <= pb + 1e-9, (snr_db, p, pb)
        results.append((snr_db, p, t.failed[0], t.extra["bler"][0]))
    psnrs = [r[1] for r in results]
    assert all(a <= b + 1e-9 for a, b in zip(psnrs, psnrs[1:])), results
    for snr_db, p, failed, bler in results:
        if snr_db <= 4.0:  # below threshold: the cliff
            assert failed or p < clean - 10.0, results
            assert bler > 0.5
        else:  # above: exactly the error-free JPEG
            assert not failed and bler == 0.0 and p == pytest.approx(clean, abs=1e-9), results


@pytest.mark.parametrize("size", [(512, 768), (375, 500)])
def test_budget_respected_for_every_mcs(kodak_dir, size):
    image = load_kodak(kodak_dir, crop=size)
    codec = build("codec", "jpeg+ldpc", budget=CBR)
    n_max = CBR.channel_uses(*size)
    assert codec.min_channel_uses(*size) <= n_max
    for mcs in codec.sweep_values()["mcs"]:
        one = codec.with_axes(mcs=mcs)
        x = one.encode(image, torch.tensor([10.0]))
        assert x.shape[0] == 1 and 0 < x.shape[1] <= n_max, (mcs, x.shape, n_max)
        link, packet = one.link(), one.packet(image[0])
        assert packet.symbols.shape == x.shape  # the padding bits are random, the length is not
        # only the codewords the bitstream needs are sent
        assert x.shape[1] == math.ceil(packet.num_bits / link.k) * link.symbols_per_codeword


def test_budget_respected_end_to_end_small_image(kodak_dir):
    image = load_kodak(kodak_dir, crop=(375, 500))
    codec = build("codec", "jpeg+ldpc", budget=CBR).with_axes(mcs="64qam-1/2")
    t = codec.transmit(image, build_channel("awgn"), 20.0)
    assert t.channel_uses[0] <= CBR.channel_uses(375, 500) and not t.failed[0]
    assert float(psnr(image, t.output)) == pytest.approx(error_free_psnr(codec, image), abs=1e-9)


@pytest.mark.parametrize("name", ["jpeg", "webp", "avif"])
def test_fit_returns_highest_fitting_quality(kodak_dir, name):
    coder = SOURCE_CODERS[name]
    arr = to_uint8(load_kodak(kodak_dir, crop=(256, 256))[0])
    max_bits = 8 * len(coder.encode(arr, 40)) + 100
    q, data = coder.fit(arr, max_bits)
    assert 8 * len(data) <= max_bits and data == coder.encode(arr, q)
    assert q >= 40
    assert 8 * len(coder.encode(arr, q + 1)) > max_bits
    assert coder.fit(arr, 8) is None
    lo, hi = coder.quality_range
    assert coder.fit(arr, 10**9)[0] == hi


@pytest.mark.parametrize("name", ["jpeg", "webp", "avif"])
def test_sizes_grow_with_quality_and_round_trip(kodak_dir, name):
    coder = SOURCE_CODERS[name]
    arr = to_uint8(load_kodak(kodak_dir, crop=(128, 192))[0])
    lo, hi = coder.quality_range
    sizes = [len(coder.encode(arr, q)) for q in (lo, (lo + hi) // 2, hi)]
    assert sizes[0] < sizes[1] < sizes[2]
    out = coder.decode(coder.encode(arr, hi), (128, 192))
    assert out.shape == arr.shape and out.dtype == np.uint8
    assert float(psnr(from_uint8(arr)[None], from_uint8(out)[None])) > 35.0


@pytest.mark.parametrize("name", ["webp+ldpc", "avif+ldpc"])
def test_webp_avif_over_ldpc_round_trip(kodak_dir, name):
    image = load_kodak(kodak_dir, crop=(256, 256))
    codec = build("codec", name, budget=CBR).with_axes(mcs="qpsk-1/2")
    t = codec.transmit(image, build_channel("awgn"), 12.0)
    assert not t.failed[0] and t.extra["bler"] == [0.0]
    assert float(psnr(image, t.output)) == pytest.approx(error_free_psnr(codec, image), abs=1e-9)
    assert float(psnr(image, t.output)) > 25.0


def test_corrupted_bitstream_falls_back_to_grey(kodak_dir):
    image = load_kodak(kodak_dir, crop=(256, 256))
    coder = SOURCE_CODERS["jpeg"]
    with pytest.raises(SourceDecodeError):
        coder.decode(b"\x00" * 500, (256, 256))
    data = coder.encode(to_uint8(image[0]), 50)
    with pytest.raises(SourceDecodeError):  # right stream, wrong expected size
        coder.decode(data, (128, 256))
    with pytest.raises(SourceDecodeError):  # truncated stream
        coder.decode(data[: len(data) // 2], (256, 256))
    # Far below the 16QAM-1/2 threshold every codeword fails and the header is destroyed.
    codec = build("codec", "jpeg+ldpc", budget=CBR).with_axes(mcs="16qam-1/2")
    t = codec.transmit(image, build_channel("awgn"), -10.0)
    assert t.failed == [True] and t.extra["bler"][0] == 1.0
    assert t.output.shape == image.shape and torch.all(t.output == FALLBACK_VALUE)
    assert t.channel_uses[0] > 0


def test_nothing_fits_is_a_failed_row():
    codec = build("codec", "jpeg+ldpc", budget=Budget("channel_uses", 500)).with_axes(mcs="qpsk-1/3")
    t = codec.transmit(torch.rand(1, 3, 64, 64), build_channel("awgn"), 10.0)
    assert t.failed == [True] and t.channel_uses == [0]
    assert torch.all(t.output == FALLBACK_VALUE)


def test_capacity_bound_on_fading_uses_ergodic_capacity(kodak_dir):
    image = load_kodak(kodak_dir, crop=(256, 256))
    awgn, rayleigh = build_channel("awgn"), build_channel("rayleigh")
    bound = build("codec", "jpeg+capacity", budget=CBR)
    a, r = bound.transmit(image, awgn, 10.0), bound.transmit(image, rayleigh, 10.0)
    assert r.extra["capacity"][0] < a.extra["capacity"][0] == pytest.approx(math.log2(11.0))
    assert r.bits[0] <= math.floor(CBR.channel_uses(256, 256) * r.extra["capacity"][0])
    assert r.bits[0] <= a.bits[0] and psnr(image, r.output) <= psnr(image, a.output)


def test_docstring_example():
    import doctest

    import semsim.baselines.separation as module

    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0
