"""Weights files: safetensors round trip, checks with clear errors, optimiser state apart."""
import pytest
import torch
from safetensors.torch import load_file, save_file

from semsim.codec import Budget, Codec
from semsim.errors import ConfigError
from semsim.weights import (load_optimizer, load_weights, read_meta, save_optimizer, save_weights,
                            sha256)

BUDGET = Budget("cbr", 1 / 16)


class Small(Codec):
    label = "Small"

    def __init__(self, budget=BUDGET, width: int = 4, depth: int = 2):
        super().__init__(budget)
        self.width, self.depth = width, depth
        self.body = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(depth)])
        self.norm = torch.nn.BatchNorm1d(width)  # an int64 buffer too (num_batches_tracked)

    def forward(self, x):
        return self.norm(self.body(x))

    def config(self):
        return {"width": self.width, "depth": self.depth, "sizes": (1, 2)}


def test_round_trip(tmp_path):
    torch.manual_seed(0)
    a, b = Small(), Small()
    a.norm.num_batches_tracked += 7
    path = save_weights(a, tmp_path / "w.safetensors", {"train_channel": "rayleigh", "steps": 5})
    tensors = load_file(path)
    assert tensors["body.0.weight"].dtype == torch.bfloat16 and tensors["norm.num_batches_tracked"].dtype == torch.int64
    meta = load_weights(b, path)
    assert meta["steps"] == 5 and meta["label"] == "Small"
    assert meta["config"] == {"width": 4, "depth": 2, "sizes": [1, 2]}
    assert meta["sha256"] == sha256(path) == b.weights_sha256 and len(meta["sha256"]) == 64
    assert b.train_channel == "rayleigh" and int(b.norm.num_batches_tracked) == 7
    for k, v in a.state_dict().items():
        got = b.state_dict()[k]
        assert got.dtype == v.dtype
        if v.is_floating_point():
            torch.testing.assert_close(got, v.to(torch.bfloat16).float())
    exact = save_weights(a, tmp_path / "w32.safetensors", {}, dtype=torch.float32)
    c = Small()
    assert load_weights(c, exact).get("train_channel") is None and c.train_channel == ""
    assert all(torch.equal(a.state_dict()[k], c.state_dict()[k]) for k in a.state_dict())
    assert read_meta(exact)["config"]["width"] == 4
    assert not list(tmp_path.glob(".*tmp")), "no temporary files are left behind"


def test_config_mismatch_names_the_keys(tmp_path):
    path = save_weights(Small(width=4), tmp_path / "w.safetensors", {})
    with pytest.raises(ConfigError, match=r"width: file has 4, codec has 8"):
        load_weights(Small(width=8), path)


def test_shape_and_key_mismatch(tmp_path):
    class Renamed(Small):
        def config(self):
            return {"width": 4, "depth": 2, "sizes": (1, 2)}

    path = save_weights(Small(), tmp_path / "w.safetensors", {})
    wide = Renamed(width=5)
    with pytest.raises(ConfigError, match=r"shape mismatch for body\.0\.bias \(file \(4,\), codec \(5,\)\)"):
        load_weights(wide, path)
    deep = Renamed(depth=3)
    with pytest.raises(ConfigError, match=r"missing key\(s\) body\.2\.bias, body\.2\.weight"):
        load_weights(deep, path)


@pytest.mark.parametrize("content", [b"not a safetensors file at all", b""])
def test_not_safetensors(tmp_path, content):
    path = tmp_path / "w.safetensors"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match="not a readable safetensors file"):
        load_weights(Small(), path)


def test_missing_and_foreign_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_weights(Small(), tmp_path / "none.safetensors")
    foreign = tmp_path / "foreign.safetensors"
    save_file({"x": torch.zeros(2)}, str(foreign))
    with pytest.raises(ConfigError, match="not a semsim one"):
        read_meta(foreign)


def test_optimizer_round_trip(tmp_path):
    torch.manual_seed(0)
    model = Small()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.5, 0.999), weight_decay=0.01)

    def step(m, o, seed):
        torch.manual_seed(seed)
        o.zero_grad()
        m(torch.randn(8, 4)).square().mean().backward()
        o.step()

    for s in range(3):
        step(model, opt, s)
    path = save_optimizer(opt, tmp_path / "opt.safetensors", {"step": 3})
    assert "state.0.exp_avg" in load_file(path) and read_meta(path)["step"] == 3
    weights = save_weights(model, tmp_path / "w.safetensors", {}, dtype=torch.float32)

    twin = Small()
    load_weights(twin, weights)
    opt2 = torch.optim.AdamW(twin.parameters(), lr=0.5)
    load_optimizer(opt2, path)
    sd1, sd2 = opt.state_dict(), opt2.state_dict()
    assert sd1["param_groups"] == sd2["param_groups"] and sd2["param_groups"][0]["betas"] == (0.5, 0.999)
    for i, entries in sd1["state"].items():
        for name, value in entries.items():
            assert torch.equal(value, sd2["state"][i][name]), (i, name)
    step(model, opt, 9)
    step(twin, opt2, 9)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters()))

    with pytest.raises(ConfigError, match="holds AdamW state, not SGD"):
        load_optimizer(torch.optim.SGD(twin.parameters(), lr=0.1), path)
    with pytest.raises(ConfigError, match="parameters per group"):
        load_optimizer(torch.optim.AdamW(list(twin.parameters())[:2]), path)


def test_docstring_example_runs():
    import doctest

    import semsim.weights

    result = doctest.testmod(semsim.weights, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_shipped_weights_by_name_with_sha256_check(tmp_path):
    import json

    from semsim.weights import resolve_weights, sha256

    a = Small()
    path = save_weights(a, tmp_path / "lin.safetensors", {"steps": 1})
    (tmp_path / "manifest.json").write_text(json.dumps(
        {"weights": {"lin-small": {"file": "lin.safetensors", "sha256": sha256(path), "method": "lin"}}}))
    assert resolve_weights("lin-small", tmp_path) == path
    assert resolve_weights(str(path)) == path
    with pytest.raises(ConfigError, match="shipped: 'lin-small'"):
        resolve_weights("other", tmp_path)
    with pytest.raises(ConfigError, match="not found"):
        resolve_weights(str(tmp_path / "nope.safetensors"))
    save_weights(a, path, {"steps": 2})  # replaced after the manifest was written
    with pytest.raises(ConfigError, match="differs from the manifest"):
        resolve_weights("lin-small", tmp_path)
    with pytest.raises(ConfigError, match="none yet|shipped"):
        resolve_weights("no-such-name")  # the package's own manifest


def test_corrupt_tensors_are_refused_whatever_the_name(tmp_path):
    """save_weights writes a checksum of the tensors; load_weights refuses a file whose bytes changed."""
    from semsim.baselines.deepjscc import DeepJSCC

    path = save_weights(DeepJSCC(Budget("cbr", 1 / 16), preset="paper"), tmp_path / "mine.safetensors", {})
    load_weights(DeepJSCC(Budget("cbr", 1 / 16), preset="paper"), path)
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF  # inside the last tensor
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="corrupt"):
        load_weights(DeepJSCC(Budget("cbr", 1 / 16), preset="paper"), path)


def test_shipped_file_given_by_path_is_checked_against_the_manifest(tmp_path):
    import json
    import shutil

    from semsim.weights import PRETRAINED_DIR, manifest, resolve_weights

    entry = manifest()["deepjscc-small"]
    shutil.copy(PRETRAINED_DIR / entry["file"], tmp_path / entry["file"])
    (tmp_path / "manifest.json").write_text(json.dumps({"weights": {"deepjscc-small": entry}}))
    path = tmp_path / entry["file"]
    assert resolve_weights(str(path), tmp_path) == path
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match="differs from the manifest"):
        resolve_weights(str(path), tmp_path)
