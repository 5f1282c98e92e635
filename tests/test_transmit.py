"""`semsim transmit` and `semsim.transmit`: one image through one method and channel."""
from __future__ import annotations

import doctest
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import semsim
from semsim.cli import main
from semsim.pictures import CAMVID_PALETTE, palette
from semsim.transmit import default_weights

H, W = 64, 96
SEGMENT = "label every pixel by object class"
RECONSTRUCT = "send me the photo as it is"
AMBIGUOUS = "work on the image"  # the task KB scores both tasks within its margin


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 64x96 crop of a photo scikit-image ships, a procedural street scene with its label map, a corrupt file;
    and the task KB loaded once (Sentence-BERT takes a few seconds) for every test of this module."""
    import skimage.data

    from semsim.data import procedural_scene

    folder = tmp_path_factory.mktemp("transmit")
    photo = Image.open(Path(skimage.data.__file__).parent / "astronaut.png").convert("RGB")
    photo.crop((200, 100, 200 + W, 100 + H)).save(folder / "photo.png")
    image, label = procedural_scene(np.random.default_rng(0), H, W)
    Image.fromarray(np.round(image * 255).astype(np.uint8)).save(folder / "scene.png")
    Image.fromarray(label.astype(np.uint8), "L").save(folder / "scene_label.png")
    Image.fromarray(np.zeros((32, 32), np.uint8), "L").save(folder / "small_label.png")
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    semsim.resolve_task(SEGMENT)
    return folder


def _cli(capsys, *argv):
    code = main(["transmit", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_reconstruction_over_awgn(files, tmp_path, capsys):
    out_png = tmp_path / "new" / "folder" / "recon.png"
    code, out, err = _cli(capsys, files / "photo.png", "--task", RECONSTRUCT, "--channel", "awgn", "--snr", 10,
                          "--out", out_png)
    assert code == 0, err
    assert Image.open(out_png).size == (W, H)
    assert "task: reconstruction (request 'send me the photo as it is'; similarity reconstruction" in out
    # the shipped weights are used when none are given
    assert "method: GenSC (semantic, preset small): weights " in out and "semantic-small.safetensors, trained on awgn" in out
    assert "channel: awgn, SNR 10 dB" in out
    assert f"channel uses: {3 * H * W // 16} of {3 * H * W // 16} allowed (budget cbr=1/16), CBR 0.0625" in out
    assert "PSNR: " in out and "time: " in out and f"wrote {out_png}" in out
    assert "untrained" not in err
    assert not list(out_png.parent.glob(".*.tmp"))


def test_segmentation_over_rayleigh_with_label(files, tmp_path, capsys):
    out_png = tmp_path / "seg.png"
    code, out, err = _cli(capsys, files / "scene.png", "--task", SEGMENT, "--channel", "rayleigh", "--snr", 5,
                          "--label", files / "scene_label.png", "--out", out_png)
    assert code == 0, err
    picture = np.asarray(Image.open(out_png))
    assert picture.shape == (H, 2 * W, 3)  # input | overlay
    assert np.abs(picture[:, :W].astype(int) - np.asarray(Image.open(files / "scene.png")).astype(int)).max() <= 1
    assert "task: segmentation" in out and "channel: rayleigh, SNR 5 dB" in out
    assert "channel uses: 192 of 1152 allowed" in out  # 2 symbols per 8x8 block
    assert "mIoU: 0." in out and "(11 classes, against scene_label.png)" in out
    assert "input | predicted classes" in out


def test_segmentation_without_label_reports_no_miou(files, tmp_path, capsys):
    code, out, _ = _cli(capsys, files / "scene.png", "--task", SEGMENT, "--out", tmp_path / "seg.jpg")
    assert code == 0
    assert "mIoU: not computed" in out and Image.open(tmp_path / "seg.jpg").size == (2 * W, H)


def test_digital_method_with_an_mcs(files, tmp_path, capsys):
    out_png = tmp_path / "jpeg.png"
    code, out, err = _cli(capsys, files / "photo.png", "--method", "jpeg+ldpc", "--mcs", "16qam-1/2",
                          "--budget", "1/8", "--snr", 12, "--out", out_png)
    assert code == 0, err
    assert err == ""  # nothing learned, no warning
    assert "method: JPEG+LDPC (jpeg+ldpc, mcs 16qam-1/2): no weights needed" in out
    assert "task: reconstruction (no request; the method's task)" in out
    assert "budget cbr=1/8" in out and "source: quality" in out and "FAILED" not in out
    psnr = float(out.split("PSNR: ")[1].split()[0])
    assert psnr > 20
    assert Image.open(out_png).size == (W, H)


def test_channel_uses_budget_and_inline_channel_spec(files, tmp_path, capsys):
    code, out, err = _cli(capsys, files / "photo.png", "--task", RECONSTRUCT, "--channel-uses", 500,
                          "--channel", "{name: rician, k_db: 3, block_length: 64}", "--out", tmp_path / "r.png")
    assert code == 0, err
    assert "channel: rician(block_length=64,k_db=3), SNR 10 dB" in out
    assert "channel uses: 500 of 500 allowed (budget channel_uses=500)" in out


def test_weights_file_and_training_channel_are_reported(files, tmp_path, capsys):
    from semsim.weights import save_weights

    codec = semsim.build_codec({"name": "semantic", "preset": "small"}, budget=semsim.Budget("cbr", 1 / 16))
    path = save_weights(codec, tmp_path / "gensc.safetensors", {"train_channel": "rayleigh"})
    code, out, err = _cli(capsys, files / "photo.png", "--weights", path, "--out", tmp_path / "r.png")
    assert code == 0, err
    assert f"weights {path}, trained on rayleigh" in out and err == ""


def test_shipped_weights_hook(files, tmp_path, monkeypatch):
    from semsim.weights import save_weights

    assert default_weights("semantic", "small").name == "semantic-small.safetensors"  # the shipped file
    codec = semsim.build_codec({"name": "semantic", "preset": "small"}, budget=semsim.Budget("cbr", 1 / 16))
    path = save_weights(codec, tmp_path / "shipped.safetensors", {"train_channel": "awgn"})
    monkeypatch.setattr(sys.modules["semsim.transmit"], "default_weights", lambda method, preset: path)
    r = semsim.transmit(files / "photo.png", snr_db=5.0)
    assert r.weights == str(path) and r.train_channel == "awgn" and r.warning == ""


@pytest.mark.parametrize("args, needle", [
    (["corrupt.png"], "cannot read image"),
    (["missing.png"], "cannot read image"),
    (["photo.png", "--task", "transcribe this audio"], "matches no known task"),
    (["photo.png", "--task", AMBIGUOUS], "is ambiguous: "),
    (["photo.png", "--snr", "75"], "outside the valid range"),
    (["photo.png", "--channel", "foo"], "unknown channel 'foo'; valid choices: 'awgn'"),
    (["photo.png", "--method", "foo"], "unknown codec 'foo'; valid choices:"),
    (["photo.png", "--method", "deepjscc", "--task", SEGMENT],
     "method 'deepjscc' serves reconstruction only, but the request"),
    (["scene.png", "--task", SEGMENT, "--label", "small_label.png"], "must match pixel for pixel"),
    (["photo.png", "--method", "semantic", "--mcs", "16qam-1/2"], "unknown option(s) 'mcs'"),
    (["photo.png", "--method", "jpeg+ldpc", "--mcs", "8psk-1/2"], "8psk"),
    (["photo.png", "--channel", "{name: rayleigh"], "cannot parse the channel spec"),
])
def test_bad_input_exits_2_with_one_line(files, tmp_path, capsys, args, needle):
    out_png = tmp_path / "x.png"
    args = [files / a if a.endswith(".png") else a for a in args]
    code, _, err = _cli(capsys, *args, "--out", out_png)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("semsim: error: ") and needle in err, err
    assert not out_png.exists()


def test_ambiguous_request_is_a_question_and_a_task_name_answers_it(files, tmp_path, capsys):
    """Within the margin the CLI names both tasks with their scores and how to force one; a task's own
    name (any case) skips the KB."""
    code, out, err = _cli(capsys, files / "scene.png", "--task", AMBIGUOUS, "--out", tmp_path / "x.png")
    assert code == 2 and out == "" and err.count("\n") == 1 and err.startswith("semsim: error: "), err
    assert f"request {AMBIGUOUS!r} is ambiguous: " in err
    for task in ("reconstruction", "segmentation"):
        assert re.search(rf"{task} 0\.\d{{3}}", err) and f"'--task {task}'" in err, err
    assert not (tmp_path / "x.png").exists()
    code, out, err = _cli(capsys, files / "scene.png", "--task", "Segmentation", "--out", tmp_path / "seg.png")
    assert code == 0, err
    assert "task: segmentation (given)" in out and (tmp_path / "seg.png").exists()


@pytest.mark.parametrize("name", ["out.gif", "out", "out.PNG.txt"])
def test_output_must_be_png_or_jpeg(files, tmp_path, capsys, name):
    code, _, err = _cli(capsys, files / "photo.png", "--out", tmp_path / name)
    assert code == 2 and err.count("\n") == 1 and "must end in '.jpeg', '.jpg', '.png'" in err


def test_python_api_on_tensors(files):
    scene = semsim.build_dataset({"name": "procedural", "num": 1, "height": H, "width": W})[0]
    r = semsim.transmit(scene.image, SEGMENT, channel="awgn", snr_db=10.0, truth=scene.label)
    assert isinstance(r, semsim.TransmitResult)
    assert r.task == "segmentation" and set(r.scores) == {"reconstruction", "segmentation"}
    assert r.scores["segmentation"] > r.scores["reconstruction"]
    assert r.output.shape == (11, H, W) and r.prediction.shape == (H, W) and r.picture.size == (2 * W, H)
    assert r.channel_uses == 192 and math.isclose(r.cbr, 192 / (3 * H * W)) and math.isnan(r.psnr)
    assert 0 <= r.miou <= 1 and r.seconds > 0 and "untrained" not in r.warning
    again = semsim.transmit(scene.image, task="segmentation", channel="awgn", snr_db=10.0, truth=scene.label)
    assert torch.equal(again.output, r.output)  # same seed, same weights and noise
    rec = semsim.transmit(scene.image[None], task="reconstruction", snr_db=10.0)
    assert rec.output.shape == (3, H, W) and rec.prediction is None and rec.psnr > 0
    with pytest.raises(semsim.errors.ConfigError, match="either a request"):
        semsim.transmit(scene.image, SEGMENT, task="segmentation")


def test_miou_against_a_perfect_and_a_void_label(files, monkeypatch):
    """mIoU goes through the shared confusion matrix and ignores labels outside [0, C) (VOC's 255)."""
    scene = semsim.build_dataset({"name": "procedural", "num": 1, "height": H, "width": W})[0]
    r = semsim.transmit(scene.image, task="segmentation", snr_db=10.0, truth=scene.label)
    perfect = r.prediction.clone()
    assert semsim.transmit(scene.image, task="segmentation", snr_db=10.0, truth=perfect).miou == 1.0
    voided = perfect.clone()
    voided[:, : W // 2] = 255
    assert semsim.transmit(scene.image, task="segmentation", snr_db=10.0, truth=voided).miou == 1.0
    with pytest.warns(DeprecationWarning, match="truth="):  # the former name of the ground truth
        assert semsim.transmit(scene.image, task="segmentation", snr_db=10.0, label=perfect).miou == 1.0


def test_palettes():
    assert palette(11).tolist() == [list(c) for c in CAMVID_PALETTE]
    voc = palette(21)
    assert voc.shape == (21, 3) and voc[0].tolist() == [0, 0, 0] and voc[1].tolist() == [128, 0, 0]
    assert voc[15].tolist() == [192, 128, 128]  # person
    assert len({tuple(c) for c in palette(256).tolist()}) == 256


def test_docstring_example_runs(files):
    result = doctest.testmod(sys.modules["semsim.transmit"])
    assert result.attempted > 0 and result.failed == 0
