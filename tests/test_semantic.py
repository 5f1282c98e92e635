"""The paper's system as a codec: shapes, budget, the diffusion decoder, training, presets."""
from __future__ import annotations

import pytest
import torch
from conftest import fit_steps

from semsim import registry
from semsim.channels import build_channel
from semsim.cli import main
from semsim.codec import Budget, Task
from semsim.errors import SemsimError
from semsim.info import bf16_mib, build_meta, parameter_counts
from semsim.semantic.system import SemanticCodec

CBR = Budget("cbr", 1 / 16)


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    return SemanticCodec(CBR, preset="small")


def _perturbed(codec: SemanticCodec) -> SemanticCodec:
    """adaLN-Zero starts the DiT at zero output; give every zero-initialised weight some values."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in codec.recon_decoder.parameters():
            if p.abs().max() == 0:
                p.normal_(0, 0.02)
    return codec


def test_small_preset_fits_cpu_and_file_limits():
    c = build_meta("semantic", "small")
    counts = parameter_counts(c)
    assert counts["total"] <= 8_000_000
    assert bf16_mib(c) <= 8.0
    for part in ("tx_kb", "encoder", "rx_kb", "recon_decoder", "seg_decoder"):
        assert counts[part] > 0


def test_paper_preset_is_built_on_meta_device(capsys):
    c = build_meta("semantic", "paper")
    assert all(p.is_meta for p in c.parameters())
    counts = parameter_counts(c)
    # DiT-XL/2 backbone: 28 blocks of ~18 w^2 (attention, MLP, adaLN) with w = 1152
    assert 28 * 18 * 1152**2 * 0.9 < counts["recon_decoder"] < 28 * 18 * 1152**2 * 1.3
    # three Swin stages with depths (2, 2, 6): dominated by 6 blocks of width 384 (~12 w^2 each)
    assert 6 * 12 * 384**2 < counts["tx_kb"] < 20_000_000
    assert main(["info", "paper"]) == 0
    out = capsys.readouterr().out
    assert "recon_decoder" in out and "tx_kb" in out and f"{counts['total']:,d}" in out
    assert main(["info"]) == 0
    assert "semantic" in capsys.readouterr().out


def test_unknown_preset_is_one_clear_error(capsys):
    assert main(["info", "huge"]) == 2
    err = capsys.readouterr().err
    assert "huge" in err and "small" in err and "paper" in err


@pytest.mark.parametrize("size", [(512, 768), (375, 500), (360, 480)])
def test_symbol_count_within_budget_and_segmentation_sends_fewer(codec, size):
    h, w = size
    for budget in (CBR, Budget("channel_uses", 10_000), Budget("cbr", 1 / 48)):
        c = SemanticCodec.__new__(SemanticCodec)
        c.__dict__.update(codec.__dict__)
        c.budget = budget
        n_rec, n_seg = c.symbol_count(Task.RECONSTRUCTION, h, w), c.symbol_count(Task.SEGMENTATION, h, w)
        assert 0 < n_rec <= budget.channel_uses(h, w)
        assert 0 < n_seg <= budget.channel_uses(h, w)
        grid = -(-h // 16) * 2 * (-(-w // 16) * 2)
        assert n_seg == min(budget.channel_uses(h, w), c.cfg["seg_channels"] * grid) <= n_rec
        if budget.kind == "cbr":
            assert n_seg < n_rec
    # at CBR 1/16 reconstruction fills the budget exactly (the latent grid holds up to CBR 1/8)
    assert codec.symbol_count(Task.RECONSTRUCTION, h, w) == CBR.channel_uses(h, w)


@pytest.mark.parametrize("channel", ["awgn", "rayleigh"])
def test_forward_shapes_any_size(codec, channel):
    ch = build_channel(channel)
    images = torch.rand(2, 3, 40, 56)  # not multiples of 16: padded and cropped back
    snr = torch.tensor([3.0, 12.0])
    codec.eval()
    for task, out_shape in ((Task.RECONSTRUCTION, (2, 3, 40, 56)), (Task.SEGMENTATION, (2, 11, 40, 56))):
        codec.task = task
        with torch.no_grad():
            tr = codec.transmit(images, ch, snr)
        assert tuple(tr.output.shape) == out_shape
        assert tr.channel_uses[0] == codec.symbol_count(task, 40, 56) <= CBR.channel_uses(40, 56)
        if task is Task.RECONSTRUCTION:
            assert 0 <= float(tr.output.min()) and float(tr.output.max()) <= 1
    codec.task = Task.RECONSTRUCTION


def test_training_noises_the_target_through_the_schedule(codec, monkeypatch):
    seen = {}
    diffusion = codec.diffusion
    orig_add = diffusion.add_noise

    def add_noise(x0, noise, t):
        seen.update(x0=x0, noise=noise, t=t)
        out = orig_add(x0, noise, t)
        seen["x_t"] = out
        return out

    def sample_timesteps(b, device, generator=None):
        return torch.tensor([5, 700][:b], device=device)

    def decoder_spy(x_t, t, g, planes, snr_db):
        seen.update(dec_x_t=x_t, dec_t=t)
        return x_t

    monkeypatch.setattr(diffusion, "add_noise", add_noise)
    monkeypatch.setattr(diffusion, "sample_timesteps", sample_timesteps)
    monkeypatch.setattr(codec.recon_decoder, "forward", decoder_spy)
    images = torch.rand(2, 3, 32, 32)
    codec.training_step(Task.RECONSTRUCTION, images, None, build_channel("awgn"), torch.tensor([5.0, 5.0]))
    assert seen["t"].tolist() == [5, 700]
    torch.testing.assert_close(seen["x0"], images * 2 - 1)
    abar = diffusion.alphas_cumprod[seen["t"]].reshape(2, 1, 1, 1)
    torch.testing.assert_close(seen["x_t"], abar.sqrt() * seen["x0"] + (1 - abar).sqrt() * seen["noise"])
    assert seen["dec_x_t"] is seen["x_t"] and seen["dec_t"].tolist() == [5, 700]
    # a late time step has almost no signal left; an early one almost no noise
    assert torch.corrcoef(torch.stack([seen["x_t"][0].flatten(), seen["x0"][0].flatten()]))[0, 1] > 0.95
    assert torch.corrcoef(torch.stack([seen["x_t"][1].flatten(), seen["x0"][1].flatten()]))[0, 1] < 0.5


def test_time_step_and_sampling_steps_change_the_output():
    torch.manual_seed(0)
    codec = _perturbed(SemanticCodec(CBR, preset="small")).eval()
    images = torch.rand(1, 3, 32, 48)
    snr = torch.tensor([10.0])
    with torch.no_grad():
        y, info = build_channel("awgn")(codec.encode(images, snr), snr)
        planes = codec._planes(y, info, snr, (32, 48))
        g = codec.rx_kb(planes, Task.RECONSTRUCTION)
        x_t = torch.randn(1, 3, 32, 48)
        a = codec.recon_decoder(x_t, torch.tensor([10]), g, planes, snr)
        b = codec.recon_decoder(x_t, torch.tensor([900]), g, planes, snr)
        assert (a - b).abs().max() > 1e-4
        outs = {}
        for steps in (1, 10):
            codec.sampling_steps = steps
            torch.manual_seed(3)
            outs[steps] = codec.decode(y, info, snr, (32, 48))
    assert (outs[1] - outs[10]).abs().max() > 1e-4


@pytest.mark.parametrize("task", [Task.RECONSTRUCTION, Task.SEGMENTATION])
def test_a_few_training_steps_lower_the_loss(task):
    torch.manual_seed(0)
    codec = SemanticCodec(CBR, preset="small", num_classes=5)
    g = torch.Generator().manual_seed(0)
    # constant 8x8 blocks: one latent position per block carries its colour (and so its class)
    images = torch.rand(4, 3, 4, 4, generator=g).repeat_interleave(8, -1).repeat_interleave(8, -2)
    labels = (images[:, 0] * 5).long().clamp(max=4)  # a learnable colour → class map
    labels[:, :4] = 5  # void (outside [0, num_classes)) is ignored
    losses, out = fit_steps(codec, task, images, labels if task is Task.SEGMENTATION else None, steps=30)
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5
    expected = (4, 5, 32, 32) if task is Task.SEGMENTATION else (4, 3, 32, 32)
    assert tuple(out.shape) == expected


def test_task_from_free_text_request_and_unrelated_request():
    c = registry.build("codec", {"name": "semantic", "request": "label every pixel with its object class"},
                       budget=CBR)
    assert c.task is Task.SEGMENTATION
    with pytest.raises(SemsimError, match="known tasks"):
        registry.build("codec", {"name": "semantic", "request": "transcribe this audio recording"}, budget=CBR)
    with pytest.raises(SemsimError, match="valid choices"):
        registry.build("codec", {"name": "semantic", "task": "denoising"}, budget=CBR)


def _weights_file(tmp_path, train_channel="rayleigh", num_classes=None):
    from semsim.weights import save_weights

    torch.manual_seed(0)
    c = SemanticCodec(CBR, preset="small", num_classes=num_classes)
    return save_weights(c, tmp_path / "gensc.safetensors", {"train_channel": train_channel, "steps": 0})


def test_scenario_scores_weights_on_another_channel_and_segmentation_sends_fewer(tmp_path):
    import yaml

    from semsim.api import run
    from semsim.results import read_csv, summary_table

    w = _weights_file(tmp_path)
    sc = {"name": "gensc", "seed": 0, "output": str(tmp_path / "out"), "batch_size": 2,
          "data": [{"name": "procedural", "num": 2, "height": 64, "width": 96}],
          "budget": {"cbr": "1/16"}, "channels": ["awgn"], "snr_db": [10],
          "methods": [{"name": "semantic", "weights": str(w)},
                      {"name": "semantic", "weights": str(w), "task": "segmentation"}]}
    path = tmp_path / "sc.yaml"
    path.write_text(yaml.safe_dump(sc))
    rows = read_csv(run(path, progress=False))
    assert {r["train_channel"] for r in rows} == {"rayleigh"} and {r["weights"] for r in rows} == {w.name}
    uses = {r["task"]: int(r["channel_uses"]) for r in rows}
    assert uses["segmentation"] == 2 * 8 * 12 < uses["reconstruction"] == CBR.channel_uses(64, 96)
    assert all(0 <= float(r["miou"]) <= 1 for r in rows if r["task"] == "segmentation")
    assert "GenSC (trained on rayleigh)" in summary_table(rows)


def test_class_count_comes_from_the_weights_and_must_match_the_dataset(tmp_path):
    from semsim.errors import ConfigError
    from semsim.scenario import load_scenario

    w = _weights_file(tmp_path, num_classes=5)
    c = SemanticCodec(CBR, weights=str(w), task="segmentation")
    assert c.num_classes == 5 and c.train_channel == "rayleigh"
    with pytest.raises(ConfigError, match="5 classes.*has 11"):
        load_scenario({"name": "x", "data": {"name": "procedural", "num": 1}, "budget": {"cbr": "1/16"},
                       "channels": ["awgn"], "snr_db": [5],
                       "methods": [{"name": "semantic", "weights": str(w), "task": "segmentation"}]})
    with pytest.raises(ConfigError, match="num_classes"):
        SemanticCodec(CBR, weights=str(w), num_classes=11)  # the weights have 5


def test_running_a_training_scenario_points_to_semsim_train(capsys):
    assert main(["run", "scenarios/train_semantic_small.yaml", "--quiet"]) == 2
    assert "semsim train" in capsys.readouterr().err
