"""`semsim grid` and `semsim.visual.grid`: one figure of every method's output for a few images."""
from __future__ import annotations

import doctest

import pytest
import torch
import yaml
from PIL import Image

import semsim.visual
from semsim.cli import main
from semsim.config import seed_everything
from semsim.data import build_dataset
from semsim.errors import ConfigError
from semsim.metrics import psnr
from semsim.runner import Runner
from semsim.scenario import load_scenario
from semsim.visual import grid

DATA = {"name": "procedural", "num": 2, "height": 64, "width": 64}
SCENARIO = {"name": "tiny-grid", "seed": 3, "data": DATA, "budget": {"cbr": "1/2"}, "channels": ["awgn"],
            "snr_db": [10, 20], "batch_size": 2,
            "methods": [{"name": "semantic"},                                   # untrained, reconstruction
                        {"name": "semantic", "task": "segmentation"},           # the data's 11 classes
                        {"name": "semantic", "task": "segmentation", "num_classes": 5},  # another label space
                        {"name": "jpeg+ldpc", "mcs": ["16qam-1/2"]}]}


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid") / "grid.png"
    return grid(dict(SCENARIO), out=out)


def test_grid_layout(drawn):
    assert drawn.path.is_file() and Image.open(drawn.path).format == "PNG"
    assert drawn.images == ["scene_0000", "scene_0001"]
    assert drawn.columns == ["original", "ground truth", "GenSC (untrained)\nreconstruction",
                             "GenSC (untrained)\nsegmentation", "GenSC (untrained)\nsegmentation",
                             "JPEG+LDPC\n16qam-1/2"]
    assert drawn.axes == len(drawn.tiles) == 2 * 6
    assert [(t.row, t.col) for t in drawn.tiles] == [(r, c) for r in range(2) for c in range(6)]
    assert "procedural" in drawn.title and "awgn" in drawn.title and "SNR 10 dB (Es/N0)" in drawn.title
    assert "cbr=1/2" in drawn.title
    for t in drawn.tiles:
        assert t.picture.dtype.name == "float32" and t.picture.shape == (64, 64, 3)
        assert 0 <= t.picture.min() and t.picture.max() <= 1


def test_reconstruction_caption_is_psnr_of_what_is_drawn(drawn):
    originals = {s.id: s.image for s in build_dataset(DATA)}
    recon = [t for t in drawn.tiles if t.kind == "reconstruction"]
    assert len(recon) == 4
    for t in recon:
        drawn_psnr = float(psnr(originals[t.image][None], torch.from_numpy(t.picture).permute(2, 0, 1)[None])[0])
        assert t.psnr == drawn_psnr
        assert t.caption == f"PSNR {drawn_psnr:.1f} dB · {t.channel_uses:,} channel uses"


@pytest.mark.parametrize("method, col", [(3, 5), (0, 2)], ids=["jpeg+ldpc", "untrained-semantic"])
def test_grid_sends_as_semsim_run_does(drawn, method, col):
    """Same point seeds, batches and codecs as the runner: the PSNR per image matches results.csv's
    (an untrained codec's weights too, once the runner builds it after seeding with the point's seed)."""
    sc = load_scenario(dict(SCENARIO), check_classes=False)
    pt = next(p for p in sc.points() if p.snr_db == 10 and p.method == method)
    runner = Runner(sc, progress=False)
    seed_everything(pt.seed)
    runner.codec(pt)
    rows = runner.point_rows(pt)
    shown = {t.image: t.psnr for t in drawn.tiles if t.col == col}
    assert {r["image"]: r["psnr"] for r in rows} == pytest.approx(shown, abs=1e-9)


def test_class_count_mismatch_is_drawn_not_scored(drawn):
    seg = [t for t in drawn.tiles if t.kind == "segmentation"]
    scored = [t for t in seg if t.col == 3]
    foreign = [t for t in seg if t.col == 4]
    assert all(t.scored and t.num_classes == 11 and t.caption.startswith(f"mIoU {t.miou:.2f} · ") for t in scored)
    for t in foreign:
        assert not t.scored and t.num_classes == 5 and t.classes.max() < 5
        assert t.caption.startswith("trained on 5 classes: not scored") and "mIoU" not in t.caption
    truth = [t for t in drawn.tiles if t.kind == "truth"]
    assert all(t.num_classes == 11 and t.classes.shape == (64, 64) for t in truth)
    # `semsim run` still refuses the mismatch
    with pytest.raises(ConfigError, match="predicts 5 classes"):
        load_scenario(dict(SCENARIO))


def test_cli(tmp_path, capsys):
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(dict(SCENARIO, methods=[{"name": "jpeg+ldpc", "mcs": ["16qam-1/2"]}],
                                        output=str(tmp_path / "out"))))
    assert main(["grid", str(path), "--images", "scene_0001", "--snr", "20"]) == 0
    out = capsys.readouterr().out
    assert "scene_0001  JPEG+LDPC · 16qam-1/2: PSNR " in out and "wrote " in out
    assert Image.open(tmp_path / "out" / "grid.png").size[0] > 0
    assert main(["grid", str(path), "--images", "nope"]) == 2
    assert "unknown id(s) 'nope'" in capsys.readouterr().err
    assert main(["grid", str(path), "--snr", "99"]) == 2
    assert "outside the valid range" in capsys.readouterr().err


def test_grid_needs_a_transmission_scenario(tmp_path):
    ber = {"kind": "ber", "channels": ["awgn"], "snr_db": [0], "modulations": ["qpsk"]}
    with pytest.raises(ConfigError, match="needs a transmission scenario"):
        grid(ber, out=tmp_path / "g.png")
    with pytest.raises(ConfigError, match="must end in"):
        grid(dict(SCENARIO), out=tmp_path / "g.pdf")


def test_doctest(tmp_path):
    assert doctest.testmod(semsim.visual, extraglobs={"tmp": tmp_path}).failed == 0


def test_grid_of_another_channel_and_an_unknown_channel(tmp_path):
    from semsim.errors import ConfigError
    from semsim.visual import grid

    sc = {"name": "two-channels", "seed": 1, "output": str(tmp_path),
          "data": {"name": "procedural", "num": 1, "height": 64, "width": 64},
          "budget": {"cbr": "1/2"}, "channels": ["awgn", "rayleigh"], "snr_db": [10], "methods": ["jpeg+capacity"]}
    g = grid(sc, channel="rayleigh")
    assert g.path == tmp_path / "grid_rayleigh.png" and g.path.is_file() and "rayleigh at SNR" in g.title
    with pytest.raises(ConfigError, match="valid choices: awgn, rayleigh"):
        grid(sc, channel="tdl-a")
