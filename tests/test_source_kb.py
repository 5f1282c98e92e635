"""The transmitter source KB: Swin stages from timm, task-dependent selection, any image size."""
import pytest
import torch

from semsim.semantic.source_kb import TxSourceKB, pad_to_multiple


@pytest.fixture(scope="module")
def kb():
    torch.manual_seed(0)
    return TxSourceKB(depths=(1, 1, 1), feature_dim=16).eval()


@pytest.mark.parametrize("hw", [(224, 224), (512, 768), (375, 500)])
def test_feature_shapes_any_size(kb, hw):
    x = torch.rand(1, 3, *hw)
    f1, f2, f3 = kb.features(x)
    hp, wp = (-(-hw[0] // 16) * 16, -(-hw[1] // 16) * 16)
    assert f1.shape == (1, 96, hp // 4, wp // 4)
    assert f2.shape == (1, 192, hp // 8, wp // 8) and f3.shape == (1, 384, hp // 16, wp // 16)
    for task in ("reconstruction", "segmentation"):
        assert kb(x, task).shape == (1, 16, hp // 4, wp // 4)


def test_selection_reconstruction_uses_f1_segmentation_does_not(kb):
    x = torch.rand(1, 3, 64, 96)
    kb.zero_grad()
    kb(x, "segmentation").sum().backward()
    assert kb.project[0].weight.grad is None or kb.project[0].weight.grad.abs().sum() == 0
    assert kb.project[1].weight.grad.abs().sum() > 0 and kb.project[2].weight.grad.abs().sum() > 0
    kb.zero_grad()
    kb(x, "reconstruction").sum().backward()
    assert all(p.weight.grad.abs().sum() > 0 for p in kb.project)
    with torch.no_grad():
        f1, f2, f3 = kb.features(x)
        up = lambda f: torch.nn.functional.interpolate(f, size=f1.shape[-2:], mode="bilinear", align_corners=False)  # noqa: E731
        expect = kb.project[0](f1) + up(kb.project[1](f2)) + up(kb.project[2](f3))
        assert torch.allclose(kb(x, "reconstruction"), expect, atol=1e-5)
        assert torch.allclose(kb(x, "reconstruction") - kb(x, "segmentation"), kb.project[0](f1), atol=1e-5)


def test_pad_and_crop_back():
    x = torch.rand(2, 3, 375, 500)
    p, (h, w) = pad_to_multiple(x, 16)
    assert p.shape[-2:] == (384, 512) and (h, w) == (375, 500)
    assert torch.equal(p[..., :h, :w], x)


def test_table_one_configuration():
    kb = TxSourceKB()
    assert kb.swin.patch_embed.proj.kernel_size == (4, 4) and kb.swin.embed_dim == 96
    assert kb.swin.layers[0].blocks[0].attn.num_heads == 3 and kb.swin.layers[0].blocks[0].window_size == (7, 7)
    with pytest.raises(ValueError, match="'reconstruction', 'segmentation'"):
        kb(torch.rand(1, 3, 32, 32), "detection")
