"""DiT backbone (adaLN-Zero, any grid, meta-device presets) and the x0-prediction DDIM wrapper."""
import doctest

import pytest
import torch

from semsim.nn.diffusion import Diffusion
from semsim.nn.dit import DIT_XL_2, DiT, SinusoidalEmbedder, sincos_pos_embed_2d

WIDTH = 32


@pytest.fixture
def net():
    return DiT(in_channels=6, out_channels=3, width=WIDTH, depth=2, heads=2, patch_size=2)


def _randomize_zero_layers(net):
    """Give the zero-initialised adaLN and final layers random weights, as after training."""
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for layer in [b.adaLN_modulation[-1] for b in net.blocks] + [
                net.final_layer.adaLN_modulation[-1], net.final_layer.linear]:
            layer.weight.copy_(0.1 * torch.randn(layer.weight.shape, generator=gen))
            layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=gen))


def test_output_shape_for_two_grids_and_patch_check(net):
    c = torch.randn(2, WIDTH)
    assert net(torch.randn(2, 6, 8, 8), c).shape == (2, 3, 8, 8)
    assert net(torch.randn(2, 6, 6, 10), c).shape == (2, 3, 6, 10)
    assert set(net._pos_embed_cache) == {(4, 4, torch.device("cpu")), (3, 5, torch.device("cpu"))}
    with pytest.raises(ValueError, match="not divisible by patch_size 2"):
        net(torch.randn(2, 6, 7, 8), c)


def test_adaln_zero_output_is_zero_then_depends_on_conditioning(net):
    x = torch.randn(2, 6, 8, 8)
    assert torch.equal(net(x, torch.randn(2, WIDTH)), torch.zeros(2, 3, 8, 8))
    _randomize_zero_layers(net)
    c = torch.randn(2, WIDTH)
    y = net(x, c)
    assert y.abs().mean() > 1e-3
    assert (net(x, c + torch.randn(2, WIDTH)) - y).abs().mean() > 1e-3
    # each sample sees only its own conditioning row
    y0 = net(x[:1], c[:1])
    assert torch.allclose(y0, y[:1], atol=1e-5)


def test_training_moves_off_zero_and_reaches_all_parameters(net):
    x, c, target = torch.randn(4, 6, 8, 8), torch.randn(4, WIDTH), torch.randn(4, 3, 8, 8)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.mse_loss(net(x, c), target).backward()
        opt.step()
    y = net(x, c)
    assert (net(x, torch.randn(4, WIDTH)) - y).abs().mean() > 1e-4
    opt.zero_grad()
    net(x, c).square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in net.parameters())


def test_pos_embed_built_under_inference_mode_is_reused_for_training(net):
    x, c = torch.randn(1, 6, 4, 4), torch.randn(1, WIDTH)
    with torch.inference_mode():
        net(x, c)
    _randomize_zero_layers(net)
    net(x, c).sum().backward()


def test_sincos_pos_embed_matches_mae_for_square_and_is_row_major():
    from diffusers.models.embeddings import get_2d_sincos_pos_embed

    # with base_size = grid size diffusers does not rescale positions: the MAE/DiT embedding
    ref = get_2d_sincos_pos_embed(16, 5, base_size=5)
    assert torch.allclose(sincos_pos_embed_2d(16, 5, 5), ref.float(), atol=1e-6)
    pe = sincos_pos_embed_2d(16, 3, 5)
    assert pe.shape == (15, 16) and pe.dtype == torch.float32
    square = sincos_pos_embed_2d(16, 5, 5).reshape(5, 5, 16)
    assert torch.allclose(pe.reshape(3, 5, 16), square[:3, :5], atol=1e-6)


def test_sinusoidal_features_are_dits():
    import math

    t = torch.tensor([0.0, 10.0, 999.0, -5.0])
    freqs = torch.exp(-math.log(10000.0) * torch.arange(128, dtype=torch.float32) / 128)
    expect = torch.cat([torch.cos(t[:, None] * freqs), torch.sin(t[:, None] * freqs)], dim=-1)
    assert torch.allclose(SinusoidalEmbedder(WIDTH).features(t), expect, atol=1e-6)


def test_sinusoidal_embedder_time_steps_and_negative_snr():
    torch.manual_seed(0)
    emb = SinusoidalEmbedder(WIDTH)
    out = emb(torch.tensor([10.0, 900.0]))
    assert out.shape == (2, WIDTH) and out.dtype == torch.float32
    assert not torch.allclose(out[0], out[1])
    snr = emb(torch.tensor([-5.0, 0.0, 20.0]))
    assert torch.isfinite(snr).all() and not torch.allclose(snr[0], snr[1])
    assert emb(torch.tensor([3, 7])).shape == (2, WIDTH)  # integer time steps too


def test_meta_device_dit_xl_2_parameter_count():
    with torch.device("meta"):
        net = DiT(in_channels=4, out_channels=4, **DIT_XL_2)
    assert next(net.parameters()).device.type == "meta"
    w, depth = DIT_XL_2["width"], DIT_XL_2["depth"]
    count = sum(p.numel() for p in net.parameters())
    # per block 12 w^2 (attention 4 w^2, MLP 8 w^2) + 6 w^2 adaLN; final adaLN 2 w^2; small biases/embeds
    estimate = depth * 18 * w**2 + 2 * w**2
    assert estimate <= count <= 1.01 * estimate
    assert 650e6 < count < 680e6  # DiT-XL/2 is ~675 M with its own time-step and class embedders
    assert net.blocks[0].attn.num_heads == 16 and net.x_embedder.kernel_size == (2, 2)
    # DiT-XL/2 as published: 8 output channels (learned sigma) + time-step embedder + 1001 class embeddings
    with torch.device("meta"):
        published = DiT(in_channels=4, out_channels=8, **DIT_XL_2)
        t_embedder = SinusoidalEmbedder(w)
    total = sum(p.numel() for m in (published, t_embedder) for p in m.parameters()) + 1001 * w
    assert 674e6 < total < 676e6


# ---- diffusion --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def diffusion():
    return Diffusion()


def test_scheduler_configuration(diffusion):
    cfg = diffusion.scheduler.config
    assert cfg.beta_schedule == "squaredcos_cap_v2" and cfg.prediction_type == "sample"
    assert cfg.num_train_timesteps == 1000 and not cfg.clip_sample and cfg.timestep_spacing == "trailing"
    assert diffusion.alphas_cumprod[-1] < 1e-6  # x_{T-1} is pure noise


@pytest.mark.parametrize("t", [0, 250, 600, 999])
def test_add_noise_matches_the_schedule(diffusion, t):
    abar = float(diffusion.alphas_cumprod[t])
    tt = torch.full((2,), t, dtype=torch.long)
    x_t = diffusion.add_noise(torch.zeros(2, 100_000), torch.randn(2, 100_000), tt)
    assert x_t.var().item() == pytest.approx(1 - abar, rel=0.02, abs=1e-3)
    x_t = diffusion.add_noise(torch.ones(2, 1000), torch.zeros(2, 1000), tt)
    assert torch.allclose(x_t, torch.full_like(x_t, abar**0.5), rtol=1e-4, atol=1e-7)


def test_sample_timesteps_weights_the_last_step(diffusion):
    gen = torch.Generator().manual_seed(0)
    t = diffusion.sample_timesteps(20_000, "cpu", generator=gen)
    assert t.dtype == torch.long and t.shape == (20_000,)
    assert 0 <= t.min() and t.max() == 999
    # 0.25 + 0.75/1000 at T-1; binomial std ~0.003
    assert (t == 999).float().mean().item() == pytest.approx(0.25075, abs=0.015)
    assert (t < 100).sum() > 1000 and ((t > 800) & (t < 999)).sum() > 1000
    again = diffusion.sample_timesteps(20_000, "cpu", generator=torch.Generator().manual_seed(0))
    assert torch.equal(t, again)


class _Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, x_t, t):
        self.calls.append(t.clone())
        return 0.5 * x_t.clamp(-1, 1) + 0.1


def test_one_step_is_one_call_at_last_step(diffusion):
    rec = _Recorder()
    gen = torch.Generator().manual_seed(3)
    out = diffusion.sample(rec, (2, 3, 4, 4), steps=1, device="cpu", generator=gen)
    x_T = torch.randn((2, 3, 4, 4), generator=torch.Generator().manual_seed(3))
    assert len(rec.calls) == 1 and rec.calls[0].tolist() == [999, 999] and rec.calls[0].dtype == torch.long
    assert torch.equal(out, rec(x_T, rec.calls[0]))


def test_ten_steps_decreasing_and_differ_from_one_step(diffusion):
    rec = _Recorder()
    ten = diffusion.sample(rec, (2, 3, 4, 4), steps=10, device="cpu", generator=torch.Generator().manual_seed(3))
    ts = [int(t[0]) for t in rec.calls]
    assert len(ts) == 10 and ts[0] == 999 and all(a > b for a, b in zip(ts, ts[1:]))
    one = diffusion.sample(_Recorder(), (2, 3, 4, 4), steps=1, device="cpu",
                           generator=torch.Generator().manual_seed(3))
    assert (ten - one).abs().max() > 1e-3


@pytest.mark.parametrize("steps", [0, 1001])
def test_steps_out_of_range(diffusion, steps):
    with pytest.raises(ValueError, match=r"1\.\.1000"):
        diffusion.sample(_Recorder(), (1, 2), steps=steps, device="cpu")


def test_docstring_examples_run():
    import semsim.nn.diffusion
    import semsim.nn.dit

    for module in (semsim.nn.dit, semsim.nn.diffusion):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0
