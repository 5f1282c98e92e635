"""The README's commands are the ones CI runs, and the docstring examples run."""
import doctest
import re
from pathlib import Path

from conftest import REPO


def _code_blocks(text):
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def test_ci_runs_exactly_the_readme_setup_and_test_commands():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    blocks = _code_blocks(readme)
    setup, test, main_job = (b.strip() for b in blocks[:3])
    assert setup.startswith("python3 -m venv") and "torch==2.14.1 torchvision==0.29.1" in setup
    assert test == "python -m pytest"
    assert main_job == "semsim run scenarios/quickstart.yaml"
    ci_lines = [line.strip() for line in ci.splitlines() if line.strip() and not line.startswith("#")]
    assert setup in ci_lines and test in ci_lines


def test_docstring_examples_run():
    import semsim.channels

    result = doctest.testmod(semsim.channels, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def _readme_blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def _readme_example():
    """The README's worked example, ``my_plugin.py`` (a channel and a codec), written to a folder on
    ``sys.path`` and loaded as a plugin once per session; its namespace."""
    import sys
    import tempfile

    from semsim.registry import load_plugin

    if not hasattr(_readme_example, "ns"):
        code = next(b for b in _readme_blocks("python") if '@register("channel", "phase-offset")' in b)
        folder = Path(tempfile.mkdtemp(prefix="semsim-readme-"))
        (folder / "my_plugin.py").write_text(code)
        sys.path.insert(0, str(folder))
        load_plugin("my_plugin")
        _readme_example.ns = vars(sys.modules["my_plugin"])
    return _readme_example.ns


def test_readme_channel_example_rotates_by_at_most_max_deg():
    import math

    import torch

    from semsim.channels import build_channel
    from semsim.config import seed_everything

    _readme_example()
    seed_everything(0)
    ch = build_channel({"name": "phase-offset", "max_deg": 20})
    x = torch.ones(64, 4000, dtype=torch.complex64)
    y, info = ch(x, 40.0)
    phase = torch.angle(y.mean(1))
    assert phase.abs().max() <= math.radians(20) + 1e-3
    assert phase.std() > math.radians(5)  # it does rotate, differently per image
    noise = y - x * torch.polar(torch.ones(64, 1), phase[:, None])
    assert abs(10 * math.log10(1 / noise.abs().square().mean().item()) - 40.0) < 0.2  # measured SNR


def test_readme_codec_example_runs_in_a_scenario(tmp_path):
    import semsim
    from semsim.results import aggregate, read_csv

    _readme_example()
    sc = {"name": "readme-example", "seed": 0, "output": str(tmp_path),
          "data": {"name": "builtin", "limit": 2, "crop": 128}, "budget": {"cbr": "1/16"},
          "channels": ["awgn", {"name": "phase-offset", "max_deg": 20}], "snr_db": [0, 30],
          "methods": ["analog-pixels"]}
    rows = read_csv(semsim.run(sc, progress=False))
    assert len(rows) == 2 * 2 * 2
    assert all(0 < int(r["channel_uses"]) <= semsim.Budget("cbr", 1 / 16).channel_uses(128, 128) for r in rows)
    psnr = aggregate(rows, ("channel", "snr_db"), "psnr")
    assert psnr[("awgn", "30")][0] > psnr[("awgn", "0")][0] + 3
    assert psnr[("awgn", "30")][0] > 18


def test_readme_plugin_runs_the_readme_scenario_through_the_cli(tmp_path, capsys):
    """The README's scenario file, with its plugin given by ``--plugin``, runs through ``semsim run``:
    the user's channel and codec beside a shipped learned codec (``weights: pretrained``)."""
    import yaml

    import semsim
    from semsim.cli import main
    from semsim.results import read_csv

    _readme_example()
    scenario = yaml.safe_load(next(b for b in _readme_blocks("yaml") if "phase-offset" in b))
    assert "my_plugin" not in str(scenario)  # scenario files never name code
    scenario["output"] = str(tmp_path / "out")
    path = tmp_path / "my_scenario.yaml"
    path.write_text(yaml.safe_dump(scenario))
    command = next(b for b in _readme_blocks("bash") if "--plugin" in b).split()
    assert command[:2] == ["semsim", "run"] and command[-2:] == ["--plugin", "my_plugin"]
    assert main(["run", str(path), "--plugin", "my_plugin", "--no-plots", "--quiet"]) == 0
    rows = read_csv(tmp_path / "out" / "results.csv")
    assert {r["method"] for r in rows} == {"Analog pixels", "Deep JSCC"} and len(rows) == 2 * 2 * 2 * 2
    assert {r["weights"] for r in rows if r["method"] == "Deep JSCC"} == {"deepjscc-small.safetensors"}
    assert all(0 < int(r["channel_uses"]) <= semsim.Budget("cbr", 1 / 16).channel_uses(128, 128) for r in rows)
    entry = next(b for b in _readme_blocks("toml") if "semsim.plugins" in b)
    assert '[project.entry-points."semsim.plugins"]' in entry


def test_every_picture_and_scenario_the_readme_and_results_page_name_exists():
    """Thumbnails and figure links in README.md and docs/results.md point at committed files, and
    every scenario file the README names is in scenarios/."""
    import re

    from conftest import REPO

    for page in (REPO / "README.md", REPO / "docs" / "results.md"):
        text = page.read_text()
        for ref in re.findall(r'(?:src="|\]\()([^")]+\.(?:png|jpg))', text):
            assert (page.parent / ref).is_file(), f"{page.name} shows {ref}, which is missing"
    for name in set(re.findall(r"scenarios/([\w-]+\.yaml)", (REPO / "README.md").read_text())):
        assert (REPO / "scenarios" / name).is_file(), name


def test_readme_metric_is_one_file(tmp_path):
    """The README's metric, pasted into a copy of semsim/metrics.py and nowhere else, reaches the
    CSV column and a plot of a `semsim run`."""
    import shutil
    import subprocess
    import sys

    text = (REPO / "README.md").read_text()
    function = next(b for b in _readme_blocks("python") if b.startswith("def mae("))
    row = re.search(r"`(Metric\(\"mae\".*?\),)`", text).group(1)
    pkg = tmp_path / "src"
    shutil.copytree(REPO / "semsim", pkg / "semsim", symlinks=True,
                    ignore=shutil.ignore_patterns("pretrained", "baselines", "__pycache__"))
    (pkg / "semsim" / "pretrained").symlink_to(REPO / "semsim" / "pretrained")
    (pkg / "semsim" / "baselines").symlink_to(REPO / "baselines")
    metrics = pkg / "semsim" / "metrics.py"
    src = metrics.read_text()
    anchor = "#: name → metric, in the CSV's column order"
    psnr_row = re.search(r"\n( +)Metric\(\"psnr\".*?\n", src)
    assert anchor in src and psnr_row
    src = src.replace(anchor, function + "\n\n" + anchor)
    src = src.replace(psnr_row.group(0), psnr_row.group(0) + psnr_row.group(1) + row + "\n")
    metrics.write_text(src)
    scenario = tmp_path / "mae.yaml"
    scenario.write_text("name: mae\nseed: 0\ndata: {name: builtin, limit: 1, crop: 64}\nbudget: {cbr: 1/4}\n"
                        "channels: [awgn]\nsnr_db: [0, 10]\nmethods: [jpeg+capacity]\n"
                        f"output: {tmp_path / 'out'}\n")
    env = {**__import__("os").environ, "PYTHONPATH": str(pkg)}
    subprocess.run([sys.executable, "-m", "semsim", "run", str(scenario), "--quiet"], check=True, env=env,
                   cwd=tmp_path, capture_output=True, text=True)
    import csv
    rows = list(csv.DictReader(open(tmp_path / "out" / "results.csv")))
    assert [float(r["mae"]) for r in rows] and all(0 <= float(r["mae"]) < 0.5 for r in rows)
    assert list(rows[0]).index("mae") == list(rows[0]).index("psnr") + 1
    assert any("mae" in p.name for p in (tmp_path / "out").rglob("*.png"))
