"""Scenario validation: every bad input gives one clear message, exit code 2 and no output files."""
from pathlib import Path

import pytest
import yaml

from semsim.cli import main
from semsim.scenario import load_scenario

GOOD = {
    "name": "t",
    "seed": 3,
    "data": {"name": "builtin", "limit": 2},
    "budget": {"cbr": "1/16"},
    "channels": ["awgn", {"name": "rayleigh", "block_length": 64}],
    "snr_db": [0, 10],
    "methods": [{"name": "jpeg+ldpc", "mcs": ["16qam-1/2", "qpsk-1/2"]}, "jpeg+capacity"],
}


def _write(tmp_path, content) -> Path:
    p = tmp_path / "sc.yaml"
    p.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return p


def test_good_scenario_points():
    sc = load_scenario(dict(GOOD))
    pts = sc.points()
    # dataset x budget x channel x SNR x (MCS) x method = 1 x 1 x 2 x 2 x (2 + 1)
    assert len(pts) == 12
    assert len({p.id for p in pts}) == 12 and len({p.seed for p in pts}) == 12
    assert load_scenario(dict(GOOD)).points() == pts, "points and seeds are stable"
    other = load_scenario(dict(GOOD, seed=4)).points()
    assert [p.key for p in other] == [p.key for p in pts] and other[0].seed != pts[0].seed


def test_snr_range_form():
    sc = load_scenario(dict(GOOD, snr_db={"start": 0, "stop": 20, "step": 2.5}))
    assert sc.snr_db == [0, 2.5, 5, 7.5, 10, 12.5, 15, 17.5, 20]


def test_validate_cli_lists_points_and_estimate(tmp_path, capsys):
    assert main(["validate", str(_write(tmp_path, GOOD))]) == 0
    out = capsys.readouterr().out
    assert "12 points" in out and "estimated run time" in out and "snr=10" in out


BAD = [
    (dict(GOOD, colour="red"), ["unknown scenario key", "'colour'", "'channels'"]),
    (dict(GOOD, seed="abc"), ["seed", "int"]),
    (dict(GOOD, snr_db="ten"), ["snr_db", "float"]),
    (dict(GOOD, channels=["awgn", "rayleig"]), ["unknown channel 'rayleig'", "'rayleigh'", "'tdl-a'"]),
    (dict(GOOD, channels=[{"name": "rayleigh", "blok": 3}]), ["unknown option", "'blok'", "'block_length'"]),
    (dict(GOOD, methods=["jpeg+ldcp"]), ["unknown codec 'jpeg+ldcp'", "'jpeg+ldpc'"]),
    (dict(GOOD, methods=[{"name": "jpeg+ldpc", "mcs": ["256qam-1/2"]}]), ["256qam-1/2", "'16qam-1/2'"]),
    (dict(GOOD, snr_db=[0, 75]), ["outside the valid range", "[-30, 60]"]),
    (dict(GOOD, snr_db=[-31]), ["outside the valid range"]),
    (dict(GOOD, budget={"channel_uses": 20}), ["budget", "below what method", "'jpeg+ldpc'"]),
    (dict(GOOD, budget={"bits": 20}), ["'cbr'", "'channel_uses'"]),
    (dict(GOOD, data={"name": "folder", "path": "/nonexistent/kodak"}), ["/nonexistent/kodak"]),
    (dict(GOOD, kind="video"), ["unknown scenario kind", "'transmission'", "'ber'"]),
    ("name: [unclosed\n", ["not valid YAML"]),
    ("- a\n- b\n", ["must be a YAML mapping"]),
    ({k: v for k, v in GOOD.items() if k != "channels"}, ["missing required key 'channels'"]),
]


@pytest.mark.parametrize("content, words", BAD, ids=range(len(BAD)))
def test_bad_scenarios_exit_2_with_clear_message_and_no_output(tmp_path, capsys, content, words):
    path = _write(tmp_path, content)
    out = tmp_path / "out"
    for argv in (["validate", str(path)], ["run", str(path), "--output", str(out), "--quiet"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.startswith("semsim: error: ") and err.count("\n") == 1, err
        for w in words:
            assert w in err, (w, err)
        assert not out.exists(), "no output files on a validation error"


def test_missing_scenario_file(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == 2
    assert "not found" in capsys.readouterr().err


def test_corrupt_image_named_in_one_line_error(tmp_path, capsys):
    import numpy as np
    from PIL import Image

    folder = tmp_path / "imgs"
    folder.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "good.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    path = _write(tmp_path, dict(GOOD, data={"name": "folder", "path": str(folder)}))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "broken.png" in err and err.count("\n") == 1


def test_every_shipped_scenario_validates():
    """Each file in scenarios/ loads; those that read weights from an earlier training run are
    only allowed to miss those files, and visual grids (``*_grid.yaml``, for `semsim grid`) may
    show segmentation weights on data of another label space."""
    from conftest import REPO

    from semsim.errors import ConfigError
    from semsim.scenario import load_scenario

    checked = 0
    for path in sorted((REPO / "scenarios").glob("*.yaml")):
        try:
            sc = load_scenario(path, check_classes=not path.stem.endswith("_grid"))
        except ConfigError as e:
            assert "weights file" in str(e) and "not found" in str(e), f"{path.name}: {e}"
            continue
        assert sc.points(), path.name
        checked += 1
    assert checked >= 5


def test_data_by_task_feeds_each_method_only_its_task():
    """``data: {reconstruction: ..., segmentation: ...}`` pairs methods with the data of their task;
    a method whose task has no data is one clear error."""
    from semsim.errors import ConfigError
    from semsim.scenario import load_scenario

    raw = {"name": "by-task", "data": {"reconstruction": {"name": "procedural", "num": 1, "height": 64, "width": 64},
                                       "segmentation": {"name": "procedural", "num": 2, "height": 64, "width": 64,
                                                        "seed": 5}},
           "budget": {"cbr": "1/16"}, "channels": ["awgn"], "snr_db": [5],
           "methods": ["jpeg+capacity", {"name": "semantic", "task": "segmentation"}]}
    sc = load_scenario(raw)
    pairs = sorted((sc.data_tasks[p.data], sc.method_tasks[p.method]) for p in sc.points())
    assert pairs == [("reconstruction", "reconstruction"), ("segmentation", "segmentation")]
    raw["data"] = {"reconstruction": {"name": "procedural", "num": 1, "height": 64, "width": 64}}
    with pytest.raises(ConfigError, match="no segmentation entry"):
        load_scenario(raw)
    raw["data"] = {"recon": {"name": "builtin"}}
    with pytest.raises(ConfigError, match="mapping by task"):
        load_scenario(raw)


def test_quickstart_runs_the_papers_system_and_every_baseline():
    from conftest import REPO

    from semsim.info import learned_methods
    from semsim.scenario import load_scenario

    sc = load_scenario(REPO / "scenarios" / "quickstart.yaml")
    names = {m["name"] for m in sc.methods}
    assert set(learned_methods()) | {"jpeg+ldpc"} <= names
    assert all(m.get("weights") for m in sc.methods if m["name"] in learned_methods())
    assert {("semantic", "reconstruction"), ("semantic", "segmentation")} <= {
        (m["name"], t) for m, t in zip(sc.methods, sc.method_tasks)}
    assert len(sc.snr_db) >= 3 and all(t in sc.data_tasks for t in ("reconstruction", "segmentation"))


def test_one_class_per_kind_with_its_own_points_and_rows():
    from semsim.errors import ConfigError
    from semsim.evaluate import COLUMNS
    from semsim.runner import Runner
    from semsim.scenario import BER_COLUMNS, BerScenario, SweepScenario, TrainScenario, TransmissionScenario

    sc = load_scenario(dict(GOOD))
    assert type(sc) is TransmissionScenario and sc.kind == "transmission" and sc.columns == COLUMNS
    assert sc.input_refs(sc.points()[0])[1:] == [("data", 0), ("content", 0), ("method", 0), ("weights", 0)]
    ber = load_scenario({"kind": "ber", "channels": ["awgn"], "snr_db": [0, 5], "modulations": ["qpsk"]})
    assert type(ber) is BerScenario and ber.columns == BER_COLUMNS and ber.specs() == {"channel": [{"name": "awgn"}]}
    assert [p.key for p in ber.points()] == ["awgn|qpsk|uncoded|snr=0", "awgn|qpsk|uncoded|snr=5"]
    assert len(ber.point_seconds()) == 2 and ber.settings()["kind"] == "ber"
    train = load_scenario({"kind": "train", "methods": ["deepjscc"], "budget": {"cbr": "1/16"}, "channel": "awgn",
                           "data": {"reconstruction": {"name": "builtin"}}, "output": "unused"})
    assert type(train) is TrainScenario and not isinstance(train, SweepScenario)
    assert [p.key for p in train.points()] == ["train|deepjscc"] and train.train.label_space.num_classes > 0
    with pytest.raises(ConfigError, match="run it with `semsim train`"):
        Runner(train)


def test_budget_and_snr_are_parsed_once_for_scenarios_and_transmit():
    from semsim.codec import Budget
    from semsim.errors import ConfigError
    from semsim.scenario import parse_budget, parse_snr, parse_snr_list

    assert parse_budget({"cbr": "1/16"}) == Budget("cbr", 1 / 16) == parse_budget("1/16", number_is_cbr=True)
    assert parse_budget({"channel_uses": 500}) == Budget("channel_uses", 500.0)
    for bad, words in (("1/16", "{cbr: VALUE}"), ({"channel_uses": 1.5}, "int"), ({"cbr": "1e400"}, "finite")):
        with pytest.raises(ConfigError, match=words.replace("{", r"\{")):
            parse_budget(bad)
    assert parse_snr(7) == 7.0 and parse_snr_list({"start": 0, "stop": 4, "step": 2}) == [0.0, 2.0, 4.0]
    with pytest.raises(ConfigError, match=r"outside the valid range \[-30, 60\]"):
        parse_snr(75)
