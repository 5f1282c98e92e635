"""Training that accumulates: continuing shipped weights, cumulative budgets, `semsim ship` refusing
regressions and unequal budgets; the recipe's knobs (schedule, symbol policy, loss weights, bf16 on
the CPU)."""
import csv
import json
import math

import pytest
import torch

from semsim import registry
from semsim.codec import Budget, SymbolPolicy, Task
from semsim.errors import ConfigError
from semsim.train import train
from semsim.train_step import backward_per_task, learning_rate
from semsim.ship import ship_weights
from semsim.weights import cumulative, manifest, read_meta

from test_train import SCENARIO, TinyJSCC


class SharedTinyJSCC(TinyJSCC):
    """TinyJSCC whose encoder is declared shared by both tasks (for per-task gradient norms)."""

    label = "SharedTiny"

    def shared_modules(self):
        return {"enc": self.enc}


try:
    registry.register("codec", "tiny-shared-jscc")(SharedTinyJSCC)
except ConfigError:
    pass

SMALL = {"name": "builtin", "limit": 2, "crop": 64}
#: a cheap "fixed validation set" for ship in tests (the real one is BSDS500 test and CamVid val)
VALIDATION = {"reconstruction": SMALL, "segmentation": {"name": "procedural", "num": 2, "height": 64, "width": 64},
              "snr_db": [5.0, 15.0], "batch_size": 2}
DEEPJSCC = {
    "kind": "train", "name": "round", "seed": 1, "methods": [{"name": "deepjscc", "preset": "paper"}],
    "budget": {"cbr": "1/16"}, "channel": "awgn", "snr_db": {"low": 5, "high": 15},
    "steps": 25, "batch_size": 4, "crop": 32, "data": {"reconstruction": [SMALL]},
    "validation": {"every": 25, "data": SMALL, "snr_db": [5, 15]},
    "optimizer": {"lr": 3.0e-3, "betas": [0.9, 0.999], "weight_decay": 0.0, "warmup_steps": 3},
    "checkpoint_every": 25,
}


def _val(folder):
    with open(folder / "validation.csv", newline="") as f:
        return [r for r in csv.DictReader(f)]


def test_learning_rate_warmup_and_cosine():
    opt = {"lr": 1e-3, "warmup_steps": 10, "schedule": "cosine", "final_lr": 0.1}
    assert learning_rate(opt, 5, 110) == pytest.approx(5e-4)
    assert learning_rate(opt, 10, 110) == pytest.approx(1e-3)
    assert learning_rate(opt, 60, 110) == pytest.approx(1e-3 * (0.1 + 0.9 * 0.5))  # half way: cos = 0
    assert learning_rate(opt, 110, 110) == pytest.approx(1e-4)
    assert learning_rate(dict(opt, schedule="constant"), 110, 110) == pytest.approx(1e-3)


def test_symbol_policy_draws():
    torch.manual_seed(0)
    assert {SymbolPolicy(at_budget=1.0).draw(100, 300) for _ in range(50)} == {100}
    assert {SymbolPolicy(at_budget=1.0).draw(100, 60) for _ in range(50)} == {60}  # the latent holds fewer
    wide = [SymbolPolicy(at_budget=0.0, low=1 / 3, high=2.0).draw(300, 450) for _ in range(4000)]
    assert min(wide) >= 100 and max(wide) == 450  # up to the latent, above the budget
    # uniform in [100, 600] clipped at 450: P(n = 450) = 150 / 500
    assert sum(n == 450 for n in wide) / len(wide) == pytest.approx(0.3, abs=0.03)
    mix = [SymbolPolicy(at_budget=0.9, low=0.25, high=1.0).draw(400, 800) for _ in range(4000)]
    assert sum(n == 400 for n in mix) / len(mix) == pytest.approx(0.9 + 0.1 / 300, abs=0.02)
    assert "cbr 1/48 to 1/8 (mostly 1/16)" == SymbolPolicy(0.75, 1 / 3, 2.0).serves(Budget("cbr", 1 / 16))


def test_per_task_backward_equals_one_backward():
    torch.manual_seed(0)
    shared = torch.nn.Linear(4, 4)
    heads = torch.nn.Linear(4, 1), torch.nn.Linear(4, 1)
    x = torch.randn(8, 4)

    def losses():
        h = shared(x)
        return {Task.RECONSTRUCTION: heads[0](h).pow(2).mean(), Task.SEGMENTATION: 3 * heads[1](h).abs().mean()}

    sum(losses().values()).backward()
    one = [p.grad.clone() for p in shared.parameters()]
    for p in shared.parameters():
        p.grad = None
    norms = backward_per_task(losses(), list(shared.parameters()))
    assert all(torch.allclose(a, p.grad) for a, p in zip(one, shared.parameters()))
    for p in shared.parameters():
        p.grad = None
    only_rec = losses()[Task.RECONSTRUCTION]
    only_rec.backward()
    expect = float(torch.cat([p.grad.flatten() for p in shared.parameters()]).norm())
    assert norms[Task.RECONSTRUCTION] == pytest.approx(expect, rel=1e-5)
    assert norms[Task.SEGMENTATION] > 0


def test_loss_weights_and_gradient_columns(tmp_path):
    sc = dict(SCENARIO, methods=["tiny-shared-jscc"], steps=4,
              validation=dict(SCENARIO["validation"], every=4),
              per_method={"tiny-shared-jscc": {"loss_weights": {"segmentation": 0.0}, "optimizer": {"lr": 1e-3}}})
    paths = train(sc, output=tmp_path, progress=False)
    with open(tmp_path / "SharedTiny" / "curve.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    assert all(float(r["grad_reconstruction"]) > 0 and float(r["grad_segmentation"]) == 0 for r in rows)
    assert all(float(r["loss_segmentation"]) > 0 for r in rows)  # logged unweighted
    meta = read_meta(paths["SharedTiny"])
    assert meta["loss_weights"] == {"segmentation": 0.0}
    assert meta["optimizer"]["lr"] == 1e-3 and meta["cumulative"]["steps"] == 4


def test_continue_shipped_weights_accumulates_and_ship_refuses_regressions(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMSIM_CACHE_DIR", str(tmp_path / "cache"))
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    first = train(dict(DEEPJSCC), output=tmp_path / "r1", progress=False)["Deep_JSCC"]
    entries = ship_weights([first], shipped, validation=VALIDATION)
    entry = manifest(shipped)["deepjscc-paper"]
    assert entry["validation"]["replaced_score"] == {} and entry["validation"]["score"]["reconstruction"] > 10
    assert entry["cumulative"]["images"] == 100 and entries["deepjscc-paper"]["sha256"] == entry["sha256"]

    # round 2 starts from the shipped weights: better at step 0 than round 1 was, budgets add up
    second = dict(DEEPJSCC, init={"weights": str(shipped)}, precision="bf16",  # bf16 autocast on the CPU
                  optimizer=dict(DEEPJSCC["optimizer"], lr=1e-3, schedule="cosine", final_lr=0.1))
    path = train(second, output=tmp_path / "r2", progress=False)["Deep_JSCC"]
    start1 = [float(r["psnr"]) for r in _val(tmp_path / "r1" / "Deep_JSCC") if r["step"] == "0"]
    start2 = [float(r["psnr"]) for r in _val(tmp_path / "r2" / "Deep_JSCC") if r["step"] == "0"]
    assert min(s2 - s1 for s1, s2 in zip(start1, start2)) > 1.0
    meta = read_meta(path)
    assert meta["precision"] == "bf16"
    c = cumulative(meta)
    assert (c["steps"], c["images"], c["pixels"], len(c["rounds"])) == (50, 200, 200 * 32 * 32, 2)
    assert c["rounds"][1]["init"]["sha256"] == entry["sha256"] and c["rounds"][0]["init"]["from"] == "scratch"

    # an equally long round that learns nothing is a regression: refused, nothing written
    before = (shipped / "manifest.json").read_text()
    stalled = dict(DEEPJSCC, optimizer=dict(DEEPJSCC["optimizer"], lr=1e-9), seed=2)
    bad = train(stalled, output=tmp_path / "r3", progress=False)["Deep_JSCC"]
    with pytest.raises(ConfigError, match="regresses on reconstruction"):
        ship_weights([bad], shipped, validation=VALIDATION)
    assert (shipped / "manifest.json").read_text() == before
    # a round that leaves out a shipped method trained on another budget is refused too
    doc = json.loads(before)
    doc["weights"]["other-small"] = dict(entry, file="other-small.safetensors", cumulative=cumulative(entry))
    (shipped / "manifest.json").write_text(json.dumps(doc))
    with pytest.raises(ConfigError, match="unequal cumulative training budgets"):
        ship_weights([path], shipped, validation=VALIDATION)
    (shipped / "manifest.json").write_text(before)
    # forced, it ships, and the manifest says so with both scores
    ship_weights([bad], shipped, force=True, validation=VALIDATION)
    forced = json.loads((shipped / "manifest.json").read_text())["weights"]["deepjscc-paper"]["validation"]
    assert forced["forced"] and forced["score"]["reconstruction"] < forced["replaced_score"]["reconstruction"]
    assert not math.isnan(forced["score"]["reconstruction"])


def test_resume_refuses_changed_training_data(tmp_path, monkeypatch):
    """A checkpoint is not resumed on training images that changed since; the message asks for --fresh."""
    import numpy as np
    from PIL import Image

    monkeypatch.setenv("SEMSIM_CACHE_DIR", str(tmp_path / "cache"))
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(photos / f"{i}.png")
    sc = dict(SCENARIO, steps=4, data={"reconstruction": {"name": "folder", "root": str(photos)},
                                       "segmentation": SCENARIO["data"]["segmentation"]},
              validation=dict(SCENARIO["validation"], every=4))
    train(sc, output=tmp_path / "out", progress=False, stop_at_step=2)
    Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(photos / "1.png")
    with pytest.raises(ConfigError, match="data_sha256.*--fresh"):
        train(sc, output=tmp_path / "out", progress=False)
    assert train(sc, output=tmp_path / "out", progress=False, fresh=True)


def test_one_training_run_per_output_folder(tmp_path):
    """A second `semsim train` into a folder that another process is training into is refused."""
    from semsim.errors import OutputError
    from semsim.files import folder_lock

    with folder_lock(tmp_path / "out", "train", {"scenario": "other"}, exclusive=True):
        with pytest.raises(OutputError, match="another `semsim train` is training into"):
            train(dict(SCENARIO, steps=2), output=tmp_path / "out", progress=False)
    assert train(dict(SCENARIO, steps=2, validation=dict(SCENARIO["validation"], every=2)),
                 output=tmp_path / "out", progress=False)
