"""The digital receiver that survives a lost codeword (issue 14 section 4): JPEG restart intervals
dropped and concealed where LDPC parity checks fail, and resolution in rate control."""
from __future__ import annotations

import doctest
import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

from semsim.baselines import concealment, jpeg_resilience, source_coding
from semsim.baselines.concealment import lost_mask, trusted_bytes
from semsim.baselines.jpeg_resilience import decode_concealed, decodable_mcus, interval_spans, parse_jpeg
from semsim.baselines.source_coding import fit_scaled, from_uint8, source_coder, to_uint8
from semsim.channels import build_channel
from semsim.codec import Budget
from semsim.digital import DigitalLink, bits_to_bytes
from semsim.errors import ConfigError
from semsim.metrics import psnr
from semsim.registry import build


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return 10 * math.log10(255 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


@pytest.fixture
def photo(kodak_dir) -> np.ndarray:
    """``[256, 384, 3]`` uint8, the top-left corner of kodim23."""
    return np.array(Image.open(kodak_dir / "kodim23.png").convert("RGB"))[:256, :384]


def _jpeg(image: np.ndarray, quality: int = 50, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality, optimize=True, **options)
    return buf.getvalue()


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _damage(data: bytes, start: int, stop: int, seed: int = 0) -> tuple[bytes, np.ndarray]:
    """``data`` with bytes ``[start, stop)`` replaced by random ones, and the trusted-byte mask."""
    bad = bytearray(data)
    bad[start:stop] = np.random.default_rng(seed).integers(0, 256, stop - start, dtype=np.uint8).tobytes()
    trusted = np.ones(len(data), dtype=bool)
    trusted[start:stop] = False
    return bytes(bad), trusted


def test_lost_interval_is_concealed_and_the_rest_is_exact(photo):
    data = _jpeg(photo, restart_marker_rows=1)
    clean = _decode(data)
    layout = parse_jpeg(data)
    assert layout.restart_interval == 384 // 16 and layout.num_intervals == 256 // 16
    spans = interval_spans(data, layout, np.ones(len(data), bool))
    a, b = spans[7]
    bad, trusted = _damage(data, a + 60, b - 10)
    out, lost, lost_mcus = decode_concealed(bad, trusted, (256, 384))
    assert lost == [7]
    # The MCUs wholly inside the 60 trusted bytes at the interval's start are kept.
    kept = decodable_mcus(layout, data[a:a + 60], 24)[0]
    assert 0 < kept < 24 and lost_mcus.tolist() == list(layout.interval_mcus(7))[kept:]
    mask = lost_mask(layout, lost_mcus)
    assert mask[7 * 16:8 * 16, 16 * kept:].all() and not mask[7 * 16 + 1:8 * 16 - 1, :16 * kept - 1].any()
    np.testing.assert_array_equal(out[~mask], clean[~mask])
    grey = np.full_like(photo, 128)
    assert _psnr(out, photo) > _psnr(clean, photo) - 4 > _psnr(grey, photo) + 10
    # The whole interval untrusted: the MCU row and one pixel on each side are concealed.
    bad, trusted = _damage(data, a, b)
    out, lost, lost_mcus = decode_concealed(bad, trusted, (256, 384))
    mask = lost_mask(layout, lost_mcus)
    assert lost == [7] and mask.sum() == 384 * (16 + 2)
    np.testing.assert_array_equal(out[~mask], clean[~mask])
    # The same damage without restart markers: Pillow never resynchronises.
    plain = _jpeg(photo)
    start = len(plain) * (a + 10) // len(data)
    broken = _damage(plain, start, start + (b - a - 20))[0]
    try:
        garbage = _decode(broken)
    except OSError:
        garbage = grey
    assert _psnr(out, photo) > _psnr(garbage, photo) + 5


def test_decodable_mcus_counts_whole_mcus(photo):
    data = _jpeg(photo, restart_marker_rows=1)
    layout = parse_jpeg(data)
    a, b = interval_spans(data, layout, np.ones(len(data), bool))[3]
    assert decodable_mcus(layout, data[a:b], 24)[0] == 24
    counts = [decodable_mcus(layout, data[a:a + n], 24)[0] for n in range(0, b - a, 7)]
    assert counts == sorted(counts) and counts[0] == 0 and counts[-1] < 24


def test_untrusted_markers_are_counted_from_their_numbers(photo):
    data = _jpeg(photo, restart_marker_rows=1)
    layout = parse_jpeg(data)
    spans = interval_spans(data, layout, np.ones(len(data), bool))
    # Three intervals and the markers between them lost: the RST numbers around say how many.
    _, trusted = _damage(data, spans[4][0] + 5, spans[6][1] - 5)
    assert [i for i, s in enumerate(interval_spans(data, layout, trusted)) if s is None] == [4, 5, 6]
    # Nine lost in one stretch (more than the RST cycle of eight): kept only what can be counted
    # from either end, here everything outside the stretch, plus two lost ones elsewhere.
    _, trusted = _damage(data, spans[3][0] + 5, spans[11][1] - 5)
    trusted[spans[1][0] + 3] = trusted[spans[14][0] + 3] = False
    lost = [i for i, s in enumerate(interval_spans(data, layout, trusted)) if s is None]
    assert lost == [1, *range(2, 14), 14] or lost == [1, *range(3, 12), 14]
    assert all(s == spans[i] for i, s in enumerate(interval_spans(data, layout, trusted)) if s is not None)


def test_header_in_a_failed_codeword_is_refused(photo):
    data = _jpeg(photo, restart_marker_rows=1)
    bad, trusted = _damage(data, 100, 120)
    with pytest.raises(jpeg_resilience.JpegStructureError, match="header"):
        decode_concealed(bad, trusted, (256, 384))


def _failing_llrs(link: DigitalLink, info_bits: torch.Tensor, failed: list[int]) -> torch.Tensor:
    """Confident LLRs of the sent codewords, pure noise for the codewords in ``failed``."""
    coded = link.encoder(info_bits)
    llr = (2 * coded - 1) * 8.0  # Sionna's sign: log(p(1)/p(0))
    gen = torch.Generator().manual_seed(0)
    for j in failed:
        llr[j] = torch.randn(link.n, generator=gen) * 0.5
    return llr


def test_receiver_drops_exactly_the_intervals_of_failed_codewords(photo):
    codec = build("codec", "jpeg+ldpc", budget=Budget("cbr", 1 / 8), restart_rows=1).with_axes(mcs="16qam-1/2")
    image = from_uint8(photo)
    packet = codec.packet(image)
    link = codec.link()
    c = packet.info_bits.shape[0]
    failed = [c // 3, c // 3 + 1, 2 * c // 3]
    bits_hat, ok = link.decode_llr_checked(_failing_llrs(link, packet.info_bits, failed))
    wrong = (bits_hat != packet.info_bits.to(bits_hat)).any(dim=1)
    assert ok.tolist() == [j not in failed for j in range(c)] and wrong.tolist() == (~ok).tolist()
    sent = bits_to_bytes(packet.info_bits.reshape(-1)[:packet.num_bits])
    data = bits_to_bytes(bits_hat.reshape(-1)[:packet.num_bits])
    trusted = trusted_bytes(ok.numpy(), link.k, len(data))
    # Expected: an interval is lost when its bytes or the RST markers around it touch a failed codeword.
    spans = interval_spans(sent, parse_jpeg(sent), np.ones(len(sent), bool))
    expected = [i for i, (a, b) in enumerate(spans) if not trusted[max(a - 2, 0):b + 2].all()]
    out, lost, _ = decode_concealed(data, trusted, (256, 384))
    assert lost == expected and 2 <= len(lost) <= 6
    received = codec.source_decode(packet, data, ok.numpy())
    np.testing.assert_array_equal(received, out)
    assert _psnr(received, photo) > _psnr(np.full_like(photo, 128), photo) + 10


def test_codec_counts_failed_codewords_and_conceals(photo):
    image = from_uint8(photo).unsqueeze(0)
    plain = build("codec", "jpeg+ldpc", budget=Budget("cbr", 1 / 8)).with_axes(mcs="16qam-1/2")
    marked = build("codec", "jpeg+ldpc", budget=Budget("cbr", 1 / 8), restart_rows=1).with_axes(mcs="16qam-1/2")
    channel = build_channel("awgn")
    t = marked.transmit(image, channel, 30.0)
    assert t.extra["codewords_failed"] == [0] and t.extra["scale"] == [1.0] and not t.failed[0]
    assert t.extra["quality"][0] <= plain.transmit(image, channel, 30.0).extra["quality"][0]
    # Near the cliff some codewords fail: every block error fails its parity checks (a codeword
    # whose parity bits alone are wrong fails them too), and the concealed image beats grey.
    torch.manual_seed(3)
    t = marked.transmit(image, channel, 7.6)
    n_cw = math.ceil(t.bits[0] / marked.link().k)
    assert t.extra["codewords_failed"][0] >= round(t.extra["bler"][0] * n_cw)
    if 0 < t.extra["codewords_failed"][0] < n_cw // 2 and not t.failed[0]:
        assert float(psnr(image, t.output)) > 20


def test_scaling_fits_budget_and_records_scale(photo):
    image = from_uint8(photo).unsqueeze(0)
    budget = Budget("cbr", 1 / 200)  # ~6 kbit at 16QAM-1/2: below JPEG's lowest quality at full size
    off = build("codec", "jpeg+ldpc", budget=budget, scaling="off").with_axes(mcs="16qam-1/2")
    on = build("codec", "jpeg+ldpc", budget=budget).with_axes(mcs="16qam-1/2")
    channel = build_channel("awgn")
    t_off = off.transmit(image, channel, 30.0)
    assert t_off.failed == [True] and t_off.channel_uses == [0]
    t_on = on.transmit(image, channel, 30.0)
    scale = t_on.extra["scale"][0]
    assert not t_on.failed[0] and scale < 1 and t_on.output.shape == image.shape
    assert t_on.bits[0] <= on.max_info_bits(256, 384) and t_on.channel_uses[0] <= budget.channel_uses(256, 384)
    grey = float(psnr(image, torch.full_like(image, 0.5)))
    assert float(psnr(image, t_on.output)) > grey + 5
    assert on.min_channel_uses(256, 384) < off.min_channel_uses(256, 384)


def test_best_scaling_maximises_psnr(photo):
    coder = source_coder("webp")
    max_bits = 8 * 700
    best = fit_scaled(coder, photo, max_bits, scaling="best")
    full = fit_scaled(coder, photo, max_bits, scaling="off")
    assert 8 * len(best.data) <= max_bits
    full_psnr = _psnr(coder.decode(full.data, (256, 384)), photo) if full else -math.inf
    assert best.psnr >= full_psnr
    for s in source_coding.SCALES[1:]:
        small = source_coding.scaled_size((256, 384), s)
        fitted = coder.fit(source_coding.resize(photo, small), max_bits)
        if fitted is not None:
            up = source_coding.upscale(coder.decode(fitted[1], small), (256, 384))
            assert best.psnr >= _psnr(up, photo) - 1e-9


def test_options_are_checked():
    with pytest.raises(ConfigError, match="restart_rows needs the JPEG"):
        build("codec", "webp+ldpc", budget=Budget("cbr", 1 / 16), restart_rows=1)
    with pytest.raises(ConfigError, match="scaling"):
        build("codec", "jpeg+ldpc", budget=Budget("cbr", 1 / 16), scaling="yes")
    with pytest.raises(ConfigError, match="restart_rows"):
        build("codec", "jpeg+ldpc", budget=Budget("cbr", 1 / 16), restart_rows=-1)


def test_unchanged_without_options(photo):
    """Restart markers off and full-size fits: the bitstream is the one the plain fit gives."""
    codec = build("codec", {"name": "jpeg+ldpc", "restart_rows": 0, "scaling": "fallback"},
                  budget=Budget("cbr", 1 / 16)).with_axes(mcs="16qam-1/2")
    packet = codec.packet(from_uint8(photo))
    q, data = source_coder("jpeg").fit(to_uint8(from_uint8(photo)), codec.max_info_bits(256, 384))
    assert packet.quality == q and packet.scale == 1.0 and packet.num_bits == 8 * len(data)


@pytest.mark.parametrize("module", [jpeg_resilience, concealment, source_coding])
def test_docstring_examples(module):
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0


def test_report_splices_the_digital_receiver_section(tmp_path):
    from semsim.report import report

    results, page = tmp_path / "results", tmp_path / "docs" / "results.md"
    results.mkdir()
    section = "## The digital receiver: restart markers\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    (results / "digital_receiver.md").write_text(section)
    text = report(results, page).read_text()
    assert "| 1 | 2 |" in text and text.index("## The digital receiver") < text.index("## Timings")
    (results / "digital_receiver.md").unlink()  # measured by hand: a regeneration keeps it
    assert "| 1 | 2 |" in report(results, page).read_text()


def test_benchmark_prints_the_bler_table(tmp_path, capsys):
    import importlib.util

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("digital_receiver", REPO / "benchmarks" / "digital_receiver.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    md = tmp_path / "section.md"
    assert bench.main(["--parts", "bler", "--bler-snr", "20", "--bler-max-bits", "1000", "--bler-min-errors", "1",
                       "--device", "cpu", "--out", str(tmp_path / "out"), "--markdown", str(md)]) == 0
    out = capsys.readouterr().out
    assert "| per_slot |" in out and "| continuous |" in out
    assert md.read_text().startswith("## The digital receiver")


def test_markers_dropped_when_they_do_not_fit(photo):
    """At a budget where the restart markers' bytes leave no quality and scale that fits, rate
    control sends the plain stream instead of nothing."""
    image = from_uint8(photo)
    codec = build("codec", "jpeg+ldpc", budget=Budget("cbr", 1 / 200)).with_axes(mcs="16qam-1/2")
    assert codec.restart_rows == 1
    assert fit_scaled(codec.coder, to_uint8(image), codec.max_info_bits(256, 384), "best") is None
    packet = codec.packet(image)
    assert packet.info_bits is not None and b"\xff\xdd" not in bits_to_bytes(packet.info_bits.reshape(-1)[:packet.num_bits].cpu().numpy())


def test_yaml_off_is_scaling_off(tmp_path):
    """A scenario's bare ``scaling: off`` (YAML reads it as false) means no resolution scaling."""
    from semsim.scenario import load_scenario

    path = tmp_path / "s.yaml"
    path.write_text("name: s\ndata: {name: builtin, limit: 1}\nbudget: {cbr: 1/16}\nchannels: [awgn]\n"
                    "snr_db: [10]\nmethods:\n  - {name: jpeg+ldpc, mcs: qpsk-1/2, scaling: off}\n")
    spec = load_scenario(path).methods[0]
    assert build("codec", spec, budget=Budget("cbr", 1 / 16)).scaling == "off"
