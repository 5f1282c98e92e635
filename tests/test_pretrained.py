"""The weights shipped in semsim/pretrained: manifest, checksums, sizes, and that they are trained."""
import json

import pytest
import torch

from conftest import REPO

from semsim import Budget, build_codec, build_channel
from semsim.errors import ConfigError
from semsim.info import learned_methods
from semsim.ship import NO_TRAIN_CHANNEL, ship_weights
from semsim.weights import PRETRAINED_DIR, manifest, read_meta, resolve_weights, sha256

REQUIRED = ("file", "sha256", "method", "preset", "recipe", "data", "steps", "wall_seconds", "device",
            "device_name", "train_channel", "git_commit")


def test_every_learned_method_ships_small_weights_with_a_complete_manifest_entry():
    shipped = manifest()
    assert {e["method"] for e in shipped.values()} == set(learned_methods())
    for name, entry in shipped.items():
        missing = [k for k in REQUIRED if k not in entry or entry[k] in ("", None)]
        assert not missing, f"{name}: manifest lacks {missing}"
        path = PRETRAINED_DIR / entry["file"]
        assert path.stat().st_size <= 8 * 2**20, f"{name} is over 8 MiB"
        assert sha256(path) == entry["sha256"]
        assert (REPO / entry["recipe"]).is_file(), f"{name}: recipe {entry['recipe']} is not in the repo"
        meta = read_meta(path)
        assert meta["steps"] == entry["steps"] and meta["method"] == entry["method"]
        assert meta["config"]  # the architecture is recorded and checked on load


@pytest.mark.parametrize("name", sorted(manifest()))
def test_shipped_weights_load_into_their_preset(name):
    entry = manifest()[name]
    spec = {"name": entry["method"], "preset": entry["preset"], "weights": name}
    if entry["method"] == "jpeg+ldpc+fcn":
        spec["mcs"] = "16qam-1/2"
    codec = build_codec(spec, Budget("cbr", 1 / 16))
    expected = "" if entry["train_channel"] == NO_TRAIN_CHANNEL else entry["train_channel"]
    assert codec.weights == entry["file"] and codec.train_channel == expected


def test_a_shipped_file_that_does_not_match_its_preset_is_a_clear_error():
    with pytest.raises(ConfigError, match="another configuration of WITT"):
        build_codec({"name": "deepjscc", "preset": "small", "weights": "witt-small"}, Budget("cbr", 1 / 16))


def test_shipped_reconstruction_weights_are_trained(kodak_dir):
    """On a real Kodak crop the shipped Deep JSCC and GenSC beat their untrained selves by a wide
    margin and gain from a higher SNR (AWGN, CBR 1/16)."""
    from semsim.data import load_image
    from semsim.metrics import psnr

    image = load_image(kodak_dir / "kodim23.png")[:, 128:256, 256:384].unsqueeze(0)
    channel = build_channel("awgn")
    for method in ("deepjscc", "semantic"):
        scores = {}
        for weights in (None, f"{method}-small"):
            torch.manual_seed(0)
            codec = build_codec({"name": method, "weights": weights}, Budget("cbr", 1 / 16)).eval()
            for snr in (0.0, 15.0):
                torch.manual_seed(1)
                with torch.no_grad():
                    out = codec.transmit(image, channel, torch.tensor([snr]))
                scores[weights, snr] = float(psnr(image, out.output).mean())
        trained = f"{method}-small"
        assert scores[trained, 15.0] > scores[None, 15.0] + 6, scores
        assert scores[trained, 15.0] > 20.0, scores
        assert scores[trained, 15.0] > scores[trained, 0.0], scores


def test_ship_refuses_a_checkpoint_and_records_provenance(tmp_path, shared):
    """(``shared``: shipping scores the candidate on BSDS500 test, so without the data it skips.)"""
    from semsim.weights import save_weights

    codec = build_codec({"name": "deepjscc"}, Budget("cbr", 1 / 16))
    ckpt = tmp_path / "checkpoint.safetensors"
    save_weights(codec, ckpt, {"kind": "checkpoint", "step": 3, "steps": 10})
    with pytest.raises(ConfigError, match="not the final weights"):
        ship_weights([ckpt], tmp_path / "pre")
    final = tmp_path / "run" / "Deep_JSCC" / "Deep_JSCC.safetensors"
    final.parent.mkdir(parents=True)
    save_weights(codec, final, {"method": "deepjscc", "spec": {"name": "deepjscc", "preset": "small"},
                                "step": 10, "steps": 10, "train_channel": "awgn", "recipe": "x.yaml",
                                "device": "cpu", "wall_seconds": 1.5}, dtype=torch.bfloat16)
    entries = ship_weights([tmp_path / "run"], tmp_path / "pre")
    assert list(entries) == ["deepjscc-small"]
    doc = json.loads((tmp_path / "pre" / "manifest.json").read_text())
    e = doc["weights"]["deepjscc-small"]
    assert e["sha256"] == sha256(tmp_path / "pre" / "deepjscc-small.safetensors")
    assert e["steps"] == 10 and e["recipe"] == "x.yaml" and e["train_channel"] == "awgn"
    assert resolve_weights("deepjscc-small", tmp_path / "pre").is_file()
