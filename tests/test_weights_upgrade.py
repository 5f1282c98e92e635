"""Weights saved before a preset gained the mask plane, or with latent channels no budget of their
training sent, load into the new preset and compute exactly what they did."""
from __future__ import annotations

import pytest
import torch
import yaml

from semsim.baselines.adjscc import ADJSCC
from semsim.baselines.deepjscc import DeepJSCC
from semsim.baselines.witt import WITT
from semsim.channels import ChannelInfo
from semsim.codec import Budget, received_planes, select_planes
from semsim.errors import ConfigError
from semsim.weights import load_weights, save_weights

TINY = {
    "deepjscc": {"widths": [8, 8, 8, 8], "strides": [2, 2, 1, 1, 1], "kernel_size": 3},
    "adjscc": {"widths": [16, 16, 16, 16], "strides": [2, 2, 1, 1, 1], "kernel_size": 3,
               "first_kernel_size": 5, "af_reduction": 4},
    "witt": {"patch_size": 2, "embed_dims": [8, 8, 8, 8], "depths": [1, 1, 1, 1], "num_heads": [1, 1, 1, 1],
             "window_size": 2, "mlp_ratio": 2.0, "modulation": {"layers": 1, "hidden_ratio": 1.0}},
}
#: latent channels at CBR 1/8 exactly: stride 4 → 6, stride 16 → 96
AT_EIGHTH = {"deepjscc": 6, "adjscc": 6, "witt": 96}


def _variant(cls, tmp_path, name: str, **keys):
    """``cls`` reading its ``small`` preset from a file of its own (TINY plus ``keys``)."""
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({cls.method: {"small": {**TINY[cls.method], **keys}}}))
    return type(f"{cls.__name__}_{name}", (cls,), {"presets_file": path})


class Identity:
    """A channel that delivers the normalised symbols unchanged, so two codecs compare exactly."""

    def __call__(self, x, snr_db):
        return x, ChannelInfo(no=torch.full(x.shape, 0.1), h=None, equalized=True)


def _reconstruct(codec, images, cbr):
    codec.budget = Budget("cbr", cbr)
    snr = torch.full((images.shape[0],), 10.0)
    with torch.no_grad():
        return codec.decode(*Identity()(codec.encode(images, snr), snr), snr, images.shape[-2:])


@pytest.mark.parametrize("cls", [DeepJSCC, ADJSCC, WITT], ids=lambda c: c.method)
def test_old_weights_load_into_the_mask_plane_preset_and_compute_the_same(cls, tmp_path):
    torch.manual_seed(0)
    wide = 8 if cls is not WITT else 128
    old = _variant(cls, tmp_path, "old", channels=wide)(Budget("cbr", 1 / 16)).eval()
    path = save_weights(old, tmp_path / "old.safetensors", {"budget": "cbr=1/16", "crop": 64,
                                                           "symbols": {"high": 2.0}}, dtype=torch.float32)
    trim = cls.method == "deepjscc" or cls is WITT
    new = _variant(cls, tmp_path, "new", channels=AT_EIGHTH[cls.method] if trim else wide,
                   mask_plane=True)(Budget("cbr", 1 / 16)).eval()
    meta = load_weights(new, path)
    assert meta["config"]["mask_plane"] is True and "mask_plane" not in meta["upgraded_from"]
    assert new.channels == (AT_EIGHTH[cls.method] if trim else wide)
    images = torch.rand(2, 3, 64, 96)
    for cbr in (1 / 48, 1 / 16, 1 / 8):
        torch.testing.assert_close(_reconstruct(new, images, cbr), _reconstruct(old, images, cbr),
                                   rtol=0, atol=1e-5)
    # the upgraded decoder does read the mask: a trained mask weight changes the output
    key, dim = new.decoder_input
    with torch.no_grad():
        new.state_dict()[key].narrow(dim, 2 * new.channels, new.channels).fill_(0.5)
    assert not torch.allclose(_reconstruct(new, images, 1 / 16), _reconstruct(old, images, 1 / 16))


def test_channels_that_training_sent_are_not_dropped(tmp_path):
    old = _variant(DeepJSCC, tmp_path, "old", channels=8)(Budget("cbr", 1 / 16))
    # trained up to 2 x CBR 1/8 = 1/4: more than 6 channels at stride 4 hold (1/8)
    path = save_weights(old, tmp_path / "w.safetensors", {"budget": "cbr=1/8", "crop": 64, "symbols": {"high": 2.0}})
    new = _variant(DeepJSCC, tmp_path, "new", channels=6, mask_plane=True)(Budget("cbr", 1 / 16))
    with pytest.raises(ConfigError, match=r"trained to send up to 3072 symbols.*channels: 8"):
        load_weights(new, path)
    bare = save_weights(old, tmp_path / "bare.safetensors", {})
    with pytest.raises(ConfigError, match="does not say which were trained"):
        load_weights(new, bare)


def test_other_differences_are_still_reported(tmp_path):
    old = _variant(DeepJSCC, tmp_path, "old", channels=8)(Budget("cbr", 1 / 16))
    path = save_weights(old, tmp_path / "w.safetensors", {"budget": "cbr=1/16", "crop": 64})
    other = _variant(DeepJSCC, tmp_path, "other", channels=6, mask_plane=True, kernel_size=5)(Budget("cbr", 1 / 16))
    with pytest.raises(ConfigError, match="kernel_size: file has 3, codec has 5"):
        load_weights(other, path)


def test_select_planes_gives_the_named_groups():
    y = torch.complex(torch.arange(6.0), -torch.arange(6.0)).reshape(1, 6)
    info = ChannelInfo(no=torch.ones(1, 6), h=None, equalized=True)
    planes = received_planes(y, info, torch.tensor([10.0]), 2, 2, 2)
    out = select_planes(planes, 2, "y_real", "mask")
    assert out.shape == (1, 4, 2, 2)
    assert out[0, :2].flatten().tolist() == [0, 1, 2, 3, 4, 5, 0, 0]
    assert out[0, 2:].flatten().tolist() == [1, 1, 1, 1, 1, 1, 0, 0]
    with pytest.raises(ValueError, match="valid: y_real"):
        select_planes(planes, 2, "phase")
