"""Segmentation baselines: Deeplab-JSCC and JPEG+LDPC+FCN as codecs (shapes, budget, link
failures, training, void labels, presets, weights)."""
from __future__ import annotations

import pytest
import torch
from conftest import fit_steps
import torch.nn.functional as F

from semsim.baselines.deeplab import DeepLabJSCC
from semsim.baselines.fcn import DigitalFCNCodec
from semsim.baselines.separation import FALLBACK_VALUE, SeparationCodec
from semsim.channels import build_channel
from semsim.cli import main
from semsim.codec import Budget, Task
from semsim.errors import ConfigError
from semsim.info import bf16_mib, build_meta, learned_methods, parameter_counts
from semsim.registry import build
from semsim.weights import load_weights, save_weights

CBR = Budget("cbr", 1 / 16)
METHODS = ("deeplab-jscc", "jpeg+ldpc+fcn")
#: the paper system's small preset (`semsim info small`); the baselines' small presets stay within ±25 %
SEMANTIC_SMALL = 3_627_512


def _smooth(b: int, h: int, w: int) -> torch.Tensor:
    """Compressible test images (ramps with a little texture), ``[b, 3, h, w]`` in [0, 1]."""
    g = torch.Generator().manual_seed(7)
    ramp = torch.linspace(0, 1, w).expand(b, 3, h, w)
    return (0.8 * ramp + 0.2 * torch.rand(b, 3, h // 8 + 1, w // 8 + 1, generator=g)
            .repeat_interleave(8, -2).repeat_interleave(8, -1)[..., :h, :w]).clamp(0, 1)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One intra-op thread: with other jobs on a 2-core CPU, two spinning OpenMP threads make these
    small convolutions and the LDPC decoder 10-15x slower; one thread is as fast when the CPU is idle."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def deeplab():
    torch.manual_seed(0)
    return DeepLabJSCC(CBR, preset="small").eval()


@pytest.fixture(scope="module")
def fcn():
    torch.manual_seed(0)
    return build("codec", "jpeg+ldpc+fcn", budget=Budget("cbr", 1 / 2)).eval()


# --- presets --------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_small_preset_within_parameter_window(method, capsys):
    assert learned_methods()[method] == ["small", "paper"]
    c = build_meta(method, "small")
    total = parameter_counts(c)["total"]
    assert 0.75 * SEMANTIC_SMALL <= total <= 1.25 * SEMANTIC_SMALL, total
    assert bf16_mib(c) <= 8.0
    assert main(["info", "small", "--method", method]) == 0
    assert f"{total:,d}" in capsys.readouterr().out


def test_paper_presets_build_on_meta_device():
    from torchvision.models import resnet101
    from torchvision.models.segmentation import fcn_resnet50

    dl = build_meta("deeplab-jscc", "paper")
    assert all(p.is_meta for p in dl.parameters())
    with torch.device("meta"):
        r101 = resnet101(weights=None)
        ref = fcn_resnet50(weights=None, weights_backbone=None, num_classes=21)
    counts = parameter_counts(dl)
    assert counts["backbone"] == sum(p.numel() for n, p in r101.named_parameters() if not n.startswith("fc."))
    assert dl.output_stride == 8 and dl.num_classes == 21
    # the FCN of the paper preset is torchvision's fcn_resnet50, key for key
    fc = build_meta("jpeg+ldpc+fcn", "paper")
    assert all(p.is_meta for p in fc.parameters())
    assert {k: v.shape for k, v in fc.fcn.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}


@pytest.mark.parametrize("method", METHODS)
def test_unknown_preset_and_bad_num_classes_are_clear_errors(method):
    with pytest.raises(ConfigError, match="'small', 'paper'"):
        build("codec", {"name": method, "preset": "huge"}, budget=CBR)
    with pytest.raises(ConfigError, match="num_classes"):
        build("codec", {"name": method, "num_classes": 1}, budget=CBR)


# --- Deeplab-JSCC ---------------------------------------------------------------------------------

@pytest.mark.parametrize("channel", ["awgn", "rayleigh"])
def test_deeplab_forward_shapes_any_size(deeplab, channel):
    images = torch.rand(2, 3, 40, 56)  # not multiples of the output stride: padded and cropped back
    with torch.no_grad():
        tr = deeplab.transmit(images, build_channel(channel), torch.tensor([3.0, 12.0]))
    assert tuple(tr.output.shape) == (2, 11, 40, 56)
    assert torch.isfinite(tr.output).all()
    assert tr.channel_uses == [deeplab.symbol_count(40, 56)] * 2 == [CBR.channel_uses(40, 56)] * 2
    assert tr.failed == [False, False]


@pytest.mark.parametrize("size", [(512, 768), (375, 500)])
def test_deeplab_symbol_count_within_budget(deeplab, size):
    h, w = size
    s = deeplab.output_stride
    grid = -(-h // s) * (-(-w // s))
    for budget in (CBR, Budget("channel_uses", 10_000), Budget("cbr", 1 / 48), Budget("cbr", 1 / 4)):
        c = DeepLabJSCC.__new__(DeepLabJSCC)
        c.__dict__.update(deeplab.__dict__)
        c.budget = budget
        n = c.symbol_count(h, w)
        assert 0 < n == min(budget.channel_uses(h, w), deeplab.cfg["channels"] * grid) <= budget.channel_uses(h, w)
    if size == (375, 500):
        with torch.no_grad():
            x = deeplab.encode(torch.rand(1, 3, h, w), torch.tensor([10.0]))
        assert x.shape == (1, CBR.channel_uses(h, w)) and x.dtype == torch.complex64


# --- JPEG+LDPC+FCN --------------------------------------------------------------------------------

def test_fcn_axes_behave_like_the_digital_chain(fcn):
    digital = build("codec", "jpeg+ldpc", budget=fcn.budget)
    assert fcn.axes == ("mcs",) and fcn.sweep_values() == digital.sweep_values()
    assert fcn.display_name == "JPEG+LDPC+FCN" and fcn.task is Task.SEGMENTATION
    one = fcn.with_axes(mcs="64qam-2/3")
    assert one.mcs == "64qam-2/3" and one.sweep_values() == {"mcs": ["64qam-2/3"]}
    assert isinstance(one, DigitalFCNCodec) and one.fcn is fcn.fcn and one.with_axes() is one
    assert fcn.sweep_values() == digital.sweep_values()  # the original still sweeps every MCS
    with pytest.raises(ConfigError, match="valid choices: 'mcs'"):
        fcn.with_axes(modulation="qpsk")
    with pytest.raises(ConfigError, match="with_axes"):
        fcn.transmit(_smooth(1, 40, 56), build_channel("awgn"), 20.0)
    assert isinstance(fcn.digital, SeparationCodec)
    assert fcn.min_channel_uses(40, 56) == digital.min_channel_uses(40, 56)


@pytest.mark.parametrize("channel", ["awgn", "rayleigh"])
def test_fcn_segments_what_the_link_delivers(fcn, channel):
    codec = fcn.with_axes(mcs="16qam-1/2")
    images = _smooth(2, 40, 56)
    ch = build_channel(channel)
    with torch.no_grad():
        good = codec.transmit(images, ch, 30.0)
        bad = codec.transmit(images, ch, -5.0)
    for tr in (good, bad):
        assert tuple(tr.output.shape) == (2, 11, 40, 56) and torch.isfinite(tr.output).all()
        assert tr.extra["mcs"] == ["16qam-1/2"] * 2 and len(tr.extra["bler"]) == 2
        n = codec.digital.packet(images[0]).symbols.shape[1]
        assert tr.channel_uses[0] == n <= fcn.budget.channel_uses(40, 56)
        assert tr.bits[0] <= codec.max_info_bits(40, 56)
    if channel == "awgn":
        assert good.failed == [False, False] and good.extra["bler"] == [0.0, 0.0]
    # below the threshold the link fails; the FCN's output on the mid-grey fallback is kept and scored
    assert bad.failed == [True, True]
    with torch.no_grad():
        grey = codec.segment(torch.full((1, 3, 40, 56), FALLBACK_VALUE))
    torch.testing.assert_close(bad.output, grey.expand(2, -1, -1, -1))


@pytest.mark.parametrize("size", [(512, 768), (375, 500)])
def test_fcn_symbols_within_budget(size):
    h, w = size
    codec = build("codec", {"name": "jpeg+ldpc+fcn", "mcs": ["qpsk-1/2", "64qam-3/4"]}, budget=CBR)
    image = _smooth(1, h, w)
    for mcs in codec.sweep_values()["mcs"]:
        x = codec.with_axes(mcs=mcs).encode(image, torch.tensor([10.0]))
        assert 0 < x.shape[1] <= CBR.channel_uses(h, w)


# --- training -------------------------------------------------------------------------------------

def _codec(method: str, num_classes: int):
    torch.manual_seed(0)
    return build("codec", {"name": method, "num_classes": num_classes}, budget=CBR)


@pytest.mark.parametrize("method", METHODS)
def test_a_few_training_steps_lower_the_loss(method):
    codec = _codec(method, 5)
    g = torch.Generator().manual_seed(0)
    # constant 16x16 blocks (one output-stride-16 position each): colour → class, a learnable map
    images = torch.rand(4, 3, 4, 4, generator=g).repeat_interleave(16, -1).repeat_interleave(16, -2)
    labels = (images[:, 0] * 5).long().clamp(max=4)
    labels[:, :8] = 5  # void (outside [0, num_classes)) is ignored
    losses, out = fit_steps(codec, Task.SEGMENTATION, images, labels, steps=25)
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5, losses
    assert tuple(out.shape) == (4, 5, 64, 64)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("num_classes, void", [(11, 11), (21, 255)])  # CamVid, VOC
def test_void_labels_are_ignored_by_the_loss(method, num_classes, void):
    codec = _codec(method, num_classes)
    images = torch.rand(2, 3, 32, 32)
    labels = torch.randint(num_classes, (2, 32, 32))
    labels[:, :10] = void
    labels[1, :, :5] = -1
    loss, logits = codec.training_step(Task.SEGMENTATION, images, labels, build_channel("awgn"),
                                       torch.full((2,), 10.0))
    valid = (labels >= 0) & (labels < num_classes)
    expected = F.cross_entropy(logits.permute(0, 2, 3, 1)[valid], labels[valid])
    torch.testing.assert_close(loss, expected)
    loss.backward()
    all_void = torch.full((2, 32, 32), void)
    loss, _ = codec.training_step(Task.SEGMENTATION, images, all_void, build_channel("awgn"), torch.full((2,), 10.0))
    assert loss.item() == 0.0


def test_deeplab_training_needs_two_images_per_batch():
    codec = _codec("deeplab-jscc", 11).train()
    with pytest.raises(ConfigError, match="at least 2 images"):
        codec.training_step(Task.SEGMENTATION, torch.rand(1, 3, 32, 32), torch.zeros(1, 32, 32, dtype=torch.long),
                            build_channel("awgn"), torch.tensor([10.0]))


def test_fcn_training_ignores_the_channel():
    codec = _codec("jpeg+ldpc+fcn", 11).eval()
    images, labels = torch.rand(1, 3, 32, 32), torch.randint(11, (1, 32, 32))
    with torch.no_grad():
        a = codec.training_step(Task.SEGMENTATION, images, labels, build_channel("awgn"), torch.tensor([-10.0]))[1]
        b = codec.training_step(Task.SEGMENTATION, images, labels, build_channel("rayleigh"), torch.tensor([30.0]))[1]
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, codec.segment(images))


# --- weights --------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", METHODS)
def test_weights_round_trip_and_config_check(method, tmp_path):
    codec = _codec(method, 11)
    path = save_weights(codec, tmp_path / "w.safetensors", {"train_channel": "awgn"}, dtype=torch.float32)
    assert codec.config()["method"] == method and codec.config()["preset"] == "small"
    loaded = build("codec", {"name": method, "weights": str(path)}, budget=CBR)
    # the FCN trains on clean images: its weights name no training channel whatever the metadata says
    expected = "" if method == "jpeg+ldpc+fcn" else "awgn"
    assert loaded.weights == "w.safetensors" and loaded.train_channel == expected and len(loaded.weights_sha256) == 64
    for k, v in codec.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v)
    if method == "jpeg+ldpc+fcn":  # the FCN's weights serve every MCS of the link
        assert build("codec", {"name": method, "weights": str(path), "mcs": "qpsk-1/2"}, budget=CBR).weights
    with pytest.raises(ConfigError, match="num_classes"):
        load_weights(_codec(method, 21), path)


def test_docstring_examples_run():
    import doctest

    from semsim.baselines import deeplab, fcn

    for module in (deeplab, fcn):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__
