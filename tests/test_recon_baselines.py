"""The neural reconstruction baselines (Deep JSCC, ADJSCC, WITT): contract, budget, training, presets."""
from __future__ import annotations

import doctest
import itertools

import pytest
import torch
from conftest import fit_steps

from semsim import registry
from semsim.baselines.adjscc import ADJSCC, GDN
from semsim.baselines.deepjscc import DeepJSCC
from semsim.baselines.witt import WITT
from semsim.channels import build_channel
from semsim.cli import main
from semsim.codec import Budget, Task
from semsim.errors import ConfigError
from semsim.info import bf16_mib, build_meta, parameter_counts
from semsim.weights import save_weights

CBR = Budget("cbr", 1 / 16)
METHODS = {"deepjscc": DeepJSCC, "adjscc": ADJSCC, "witt": WITT}
#: total parameters of the paper system's small preset (`semsim info small`); small presets stay within ±25 %
SEMANTIC_SMALL = 3_627_512


@pytest.fixture(autouse=True)
def _one_thread():
    """These workloads are tiny; with two OpenMP threads a step stalls at every barrier whenever
    another job takes one of the two cores (10-30x slower), so run them on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _build(name: str, budget: Budget = CBR, **kwargs):
    return registry.build("codec", {"name": name, **kwargs}, budget=budget)


def _path(root: torch.nn.Module, module: torch.nn.Module) -> str:
    return next(name for name, m in root.named_modules() if m is module)


def _blocks(batch: int = 4, blocks: int = 4, size: int = 8) -> torch.Tensor:
    """Constant ``size x size`` colour blocks: structured, so a few steps can learn them."""
    g = torch.Generator().manual_seed(0)
    return torch.rand(batch, 3, blocks, blocks, generator=g).repeat_interleave(size, -1).repeat_interleave(size, -2)


@pytest.mark.parametrize("name,channel", list(itertools.product(METHODS, ["awgn", "rayleigh"])))
def test_transmit_any_size(name, channel):
    torch.manual_seed(0)
    codec = _build(name).eval()
    images = torch.rand(2, 3, 40, 56)  # not multiples of 16: padded by reflection and cropped back
    with torch.no_grad():
        t = codec.transmit(images, build_channel(channel), torch.tensor([3.0, 12.0]))
    assert tuple(t.output.shape) == (2, 3, 40, 56)
    assert 0 <= float(t.output.min()) and float(t.output.max()) <= 1
    assert t.channel_uses == [codec.symbol_count(40, 56)] * 2 == [CBR.channel_uses(40, 56)] * 2
    assert codec.task is Task.RECONSTRUCTION and codec.display_name == {"deepjscc": "Deep JSCC", "adjscc": "ADJSCC",
                                                                 "witt": "WITT"}[name]


@pytest.mark.parametrize("name", METHODS)
def test_symbol_count_never_exceeds_the_budget(name):
    codec = build_meta(name, "small")
    budgets = (CBR, Budget("cbr", 1 / 48), Budget("cbr", 1 / 4), Budget("channel_uses", 10_000),
               Budget("channel_uses", 10**7))
    sizes = [(512, 768), (375, 500), (40, 56), (1, 1), (5, 7), (17, 33), (333, 211)]
    for budget, (h, w) in itertools.product(budgets, sizes):
        codec.budget = budget
        gh, gw = -(-h // codec.stride), -(-w // codec.stride)
        n = codec.symbol_count(h, w)
        assert n == min(budget.channel_uses(h, w), codec.channels * gh * gw)
        assert n <= budget.channel_uses(h, w)
    # every latent holds at least CBR 1/8 (the paper system's cap), so CBR 1/16 fills the budget
    codec.budget = Budget("cbr", 1 / 8)
    for h, w in sizes[:3]:
        assert codec.symbol_count(h, w) == codec.budget.channel_uses(h, w)


@pytest.mark.parametrize("name", METHODS)
def test_real_encode_of_a_500x375_image_fits_the_budget(name):
    codec = _build(name).eval()
    with torch.no_grad():
        x = codec.encode(torch.rand(1, 3, 375, 500), torch.tensor([10.0]))
    assert x.dtype == torch.complex64 and tuple(x.shape) == (1, CBR.channel_uses(375, 500))


@pytest.mark.parametrize("name", METHODS)
def test_a_few_training_steps_lower_the_loss(name):
    torch.manual_seed(0)
    codec = _build(name)
    losses, out = fit_steps(codec, Task.RECONSTRUCTION, _blocks(), None, steps=40)
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5
    assert tuple(out.shape) == (4, 3, 32, 32) and not out.requires_grad
    assert 0 <= float(out.min()) and float(out.max()) <= 1


def test_training_step_refuses_segmentation():
    codec = _build("deepjscc", preset="paper")
    with pytest.raises(ConfigError, match="reconstruction only"):
        codec.training_step(Task.SEGMENTATION, _blocks(1), None, build_channel("awgn"), torch.tensor([5.0]))


@pytest.mark.parametrize("name", METHODS)
def test_small_preset_matches_the_paper_system_in_size(name):
    codec = build_meta(name, "small")
    total = parameter_counts(codec)["total"]
    assert 0.75 * SEMANTIC_SMALL <= total <= 1.25 * SEMANTIC_SMALL
    assert bf16_mib(codec) <= 8.0
    assert parameter_counts(codec)["encoder"] > 0 and parameter_counts(codec)["decoder"] > 0


@pytest.mark.parametrize("name,low,high", [("deepjscc", 1.4e5, 1.8e5),   # 5 + 5 layers of width <= 32
                                           ("adjscc", 1.0e7, 1.15e7),    # width 256, 9x9 ends (~10.7 M)
                                           ("witt", 2.5e7, 3.2e7)])      # Swin [128..320], 7-layer modulation
def test_paper_preset_builds_on_the_meta_device(name, low, high, capsys):
    codec = build_meta(name, "paper")
    assert all(p.is_meta for p in codec.parameters())
    assert low < parameter_counts(codec)["total"] < high
    assert main(["info", "paper", "--method", name]) == 0
    assert "encoder" in capsys.readouterr().out


def test_info_lists_every_method_and_preset(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    for name, preset in itertools.product(METHODS, ("small", "paper")):
        assert any(line.split()[:2] == [name, preset] for line in out.splitlines())


def test_unknown_preset_is_one_clear_error():
    with pytest.raises(ConfigError, match="'huge' for method 'witt'; valid choices: 'small', 'paper'"):
        _build("witt", preset="huge")


@pytest.mark.parametrize("name", ["adjscc", "witt"])
def test_snr_conditions_encoder_and_decoder(name):
    torch.manual_seed(0)
    codec = _build(name).eval()
    if name == "witt":
        # WITT's initialisation (std 0.02) leaves the modulation almost SNR-blind (~1e-7) until trained
        for m in codec.modules():
            if isinstance(m, torch.nn.Linear) and "modulation" in _path(codec, m):
                m.reset_parameters()
    images = _blocks(1)
    snr = torch.tensor([10.0])
    with torch.no_grad():
        x = codec.encode(images, snr)
        assert (x - codec.encode(images, torch.tensor([20.0]))).abs().max() > 1e-5
        y, info = build_channel("awgn")(x, snr)
        # only the SNR given to the AF / modulation modules changes; y and the channel info do not
        low = codec.decode(y, info, torch.tensor([0.0]), (32, 32))
        high = codec.decode(y, info, torch.tensor([20.0]), (32, 32))
    assert (low - high).abs().max() > 1e-5


def test_deepjscc_ignores_the_snr():
    codec = _build("deepjscc", preset="paper").eval()
    images = _blocks(1)
    with torch.no_grad():
        x = codec.encode(images, torch.tensor([0.0]))
        torch.testing.assert_close(x, codec.encode(images, torch.tensor([20.0])))
        y, info = build_channel("awgn")(x, torch.tensor([10.0]))
        torch.testing.assert_close(codec.decode(y, info, torch.tensor([0.0]), (32, 32)),
                                   codec.decode(y, info, torch.tensor([20.0]), (32, 32)))


def test_gdn_is_the_identity_scaled_at_init_and_its_inverse_undoes_it():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 3, 4)
    gdn, igdn = GDN(5), GDN(5, inverse=True)
    y = gdn(x)
    torch.testing.assert_close(y, x / torch.sqrt(1 + 0.1 * x**2), atol=1e-6, rtol=1e-5)
    assert (igdn(y) - x).abs().max() < 0.5 * (y - x).abs().max()  # IGDN expands what GDN shrank
    # beta and gamma stay non-negative even when their stored parameters go negative
    with torch.no_grad():
        gdn.beta.fill_(-1.0)
        gdn.gamma.fill_(-1.0)
    assert torch.isfinite(gdn(x)).all()


def test_weights_round_trip_and_config_check(tmp_path):
    torch.manual_seed(0)
    codec = _build("deepjscc", preset="paper")
    assert codec.config()["method"] == "deepjscc" and codec.config()["preset"] == "paper"
    path = save_weights(codec, tmp_path / "deepjscc.safetensors", {"train_channel": "awgn"})
    loaded = _build("deepjscc", preset="paper", weights=str(path))
    assert loaded.weights == "deepjscc.safetensors" and len(loaded.weights_sha256) == 64
    assert loaded.train_channel == "awgn" and loaded.describe()["weights"] == "deepjscc.safetensors"
    for key, value in codec.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value.to(torch.bfloat16).float())
    with pytest.raises(ConfigError, match="another configuration"):
        _build("deepjscc", preset="small", weights=str(path))
    with pytest.raises(ConfigError, match="another configuration"):
        _build("adjscc", preset="paper", weights=str(path))


@pytest.mark.parametrize("module", ["deepjscc", "adjscc", "witt"])
def test_docstring_examples(module):
    import importlib

    mod = importlib.import_module(f"semsim.baselines.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
