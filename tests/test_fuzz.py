"""Fuzzing the scenario loader through the CLI's ``main``: every malformed scenario exits 2 with
one line and no traceback and writes nothing; equivalent spellings of a valid one are accepted
with the same points and seeds (so a validator that refuses everything fails here too)."""
import datetime
import functools
import math
import random
from pathlib import Path

import pytest
import yaml

from semsim.cli import main
from semsim.scenario import load_scenario

BASE = {
    "name": "fuzz",
    "seed": 5,
    "data": {"name": "procedural", "num": 1, "height": 64, "width": 64},
    "budget": {"cbr": "1/16"},
    "channels": ["awgn"],
    "snr_db": [0, 10],
    "methods": ["jpeg+capacity"],  # last: a cut anywhere in its line breaks the document
}
REQUIRED = ("data", "budget", "channels", "snr_db", "methods")
#: values no field of BASE accepts
JUNK = [math.nan, math.inf, -math.inf, 10**400, -10**400, True, {}, {"name": {}}, b"\x00bytes",
        {"a", "b"}, datetime.date(2020, 1, 1), functools.reduce(lambda v, _: [v], range(40), "deep")]
N_MALFORMED = 120


def _paths(value, prefix=()):
    """Every (path) into the nested dicts and lists of ``value``, leaves and containers."""
    out = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for k, v in items:
        out.append(prefix + (k,))
        out += _paths(v, prefix + (k,))
    return out


def _set(doc, path, value):
    for k in path[:-1]:
        doc = doc[k]
    doc[path[-1]] = value


def _dump(doc) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def _copy(doc):
    return yaml.safe_load(yaml.safe_dump(doc, sort_keys=False))


def _bomb(depth: int = 7, width: int = 9) -> str:
    lines = [f"a0: &a0 [{', '.join(['x'] * width)}]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * width)}]" for i in range(1, depth)]
    return "\n".join(lines)


def malformed(rng: random.Random) -> tuple[str, bytes]:
    """One malformed scenario file: a label and its bytes."""
    doc = _copy(BASE)
    kind = rng.choice(["junk", "junk", "junk", "unknown-key", "missing", "duplicate-key", "alias", "encoding",
                       "repeat", "truncate", "control", "type-swap", "nest"])
    if kind == "junk":
        path = rng.choice(_paths(doc))
        _set(doc, path, rng.choice(JUNK))
        return f"junk at {path}", _dump(doc).encode()
    if kind == "unknown-key":
        spot = rng.choice([doc, doc["data"], doc["budget"]] + [{}])
        if not spot:  # a channel or method spec with an unknown option
            which = rng.choice(["channels", "methods"])
            doc[which][0] = {"name": doc[which][0], f"opt{rng.randrange(99)}": rng.choice([1, "x", 0.5])}
        else:
            spot[f"key{rng.randrange(99)}"] = rng.choice([1, "x", [1, 2]])
        return "unknown key", _dump(doc).encode()
    if kind == "missing":
        del doc[rng.choice(REQUIRED)]
        return "missing key", _dump(doc).encode()
    if kind == "duplicate-key":
        text = _dump(doc)
        key = rng.choice(list(BASE))
        line = next(ln for ln in text.splitlines() if ln.startswith(f"{key}:"))
        return f"duplicate {key}", (text + line + "\n").encode()
    if kind == "alias":
        where = rng.choice(["description", "name", "snr_db", "methods"])
        doc.pop(where, None)
        bomb = _bomb(rng.randint(6, 9)).replace("\n", "\n  ")
        return f"alias bomb in {where}", f"{_dump(doc)}{where}:\n  {bomb}\n".encode()
    if kind == "encoding":
        doc["description"] = "café ✓ " * rng.randint(1, 5)
        enc = rng.choice(["utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"])
        text = _dump(doc)
        if enc in ("latin-1", "cp1252"):
            text = text.replace(" ✓", "")
        return f"encoding {enc}", text.encode(enc)
    if kind == "repeat":
        which = rng.choice(["snr", "method", "channel", "budget"])
        if which == "snr":
            doc["snr_db"] = [0, 10, rng.choice([10, 10.0, 0, 1.0e1, 0.0])]
        elif which == "method":
            doc["methods"] = ["jpeg+capacity", rng.choice(["jpeg+capacity", {"name": "jpeg+capacity"}])]
        elif which == "channel":
            doc["channels"] = ["awgn", {"name": "awgn"}]
        else:
            doc["budget"] = [{"cbr": "1/16"}, {"cbr": rng.choice([0.0625, "1/16", "2/32"])}]
        return f"repeated {which}", _dump(doc).encode()
    if kind == "truncate":
        text = _dump(doc).encode()
        last = text.rstrip(b"\n").rfind(b"\n") + 1
        return "truncated", text[:rng.randint(last + 1, len(text) - 3)]
    if kind == "control":
        field = rng.choice(["name", "output"])
        doc[field] = rng.choice(["a\x00b", "a\x1b[31mb", "", "   ", "x" * 5000])
        return f"bad text in {field}", _dump(doc).encode()
    if kind == "type-swap":
        field = rng.choice(["seed", "snr_db", "budget", "channels", "methods", "data", "name", "batch_size"])
        doc[field] = rng.choice({
            "seed": ["1", 1.5, [1]], "snr_db": ["0, 10", {"start": 0}, {"start": "a", "stop": 1}, [[0]]],
            "budget": ["1/16", [1 / 16], {"cbr": "a/b"}, {"cbr": 0}, {"channel_uses": 1.5}],
            "channels": [[1], [["awgn"]], [{"name": "rician", "k_db": "six"}], [{"name": "tdl-a", "speed": -1}]],
            "methods": [[1], [["jpeg+capacity"]], [{"name": "semantic", "sampling_steps": 0.5}]],
            "data": [[1], "nosuch", {"name": "procedural", "num": 0}, {"name": "procedural", "height": 8}],
            "name": [1, [], {"a": 1}], "batch_size": [0, -1, 2.0, "4"]}[field])
        return f"wrong type in {field}", _dump(doc).encode()
    depth = rng.randint(40, 400)
    return f"nesting {depth}", (_dump(doc) + "description: " + "[" * depth + "]" * depth + "\n").encode()


def valid_variants(rng: random.Random) -> list[tuple[str, bytes]]:
    """Scenarios that mean exactly BASE: reordered keys, other spellings of the SNRs, the budget,
    specs and of YAML itself."""
    out = []
    snrs = [[0, 10], [0.0, 10.0], [0, 1.0e1], {"start": 0, "stop": 10, "step": 10},
            {"stop": 10, "start": 0.0, "step": 10.0}, {"start": 0, "stop": 10, "step": 9.9999999}]
    cbrs = ["1/16", 0.0625, "2/32", "1 / 16", 6.25e-2]
    for i in range(20):
        doc = _copy(BASE)
        doc["snr_db"] = snrs[i % len(snrs)]
        doc["budget"] = {"cbr": cbrs[i % len(cbrs)]}
        if i % 3 == 0:
            doc["channels"] = [{"name": "awgn"}]
            doc["methods"] = [{"name": "jpeg+capacity"}]
        if i % 4 == 1:
            doc["data"] = dict(reversed(list(doc["data"].items())))
        keys = list(doc)
        rng.shuffle(keys)
        doc = {k: doc[k] for k in keys}
        if i % 5 == 2:
            doc["description"] = "Équivalent ✓ " * 20
        text = _dump(doc) if i % 2 else yaml.safe_dump(doc, sort_keys=False, default_flow_style=True)
        if i % 6 == 3:
            text = "# a comment\n" + text.replace("\n", "  # trailing\n") if i % 2 else text
        if i % 7 == 4:
            text = text.replace("\n", "\r\n")
        data = text.encode()
        if i % 8 == 5:
            data = b"\xef\xbb\xbf" + data  # a UTF-8 byte-order mark
        out.append((f"variant {i}", data))
    anchored = _dump(BASE).replace("channels:\n- awgn", "channels: &c\n- awgn")
    out.append(("an anchor without an alias", anchored.encode()))
    return out


def _one_line_error(capsys) -> str:
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err + cap.out
    assert cap.err.startswith("semsim: error: ") and cap.err.count("\n") == 1, cap.err
    return cap.err


def test_fuzz_malformed_scenarios_exit_2_in_one_line_and_write_nothing(tmp_path, capsys):
    rng = random.Random(20260101)
    cases = [malformed(rng) for _ in range(N_MALFORMED)]
    assert len(cases) >= 100
    kinds = {label.split(" ")[0] for label, _ in cases}
    assert len(kinds) >= 10, kinds
    folder = tmp_path / "scenarios"
    folder.mkdir()
    for i, (label, data) in enumerate(cases):
        path = folder / f"case{i:03d}.yaml"
        path.write_bytes(data)
        out = tmp_path / f"out{i:03d}"
        assert main(["validate", str(path)]) == 2, (label, data[:300])
        _one_line_error(capsys)
        assert main(["run", str(path), "--output", str(out), "--quiet", "--no-plots"]) == 2, (label, data[:300])
        _one_line_error(capsys)
        assert not out.exists(), label
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scenarios"], "no file besides the scenarios"
    assert len(list(folder.iterdir())) == N_MALFORMED


def test_fuzz_output_paths_are_refused_before_the_run(tmp_path, capsys, monkeypatch):
    """Unwritable output folders (a file, under a file, a NUL byte, a name too long), all inside
    tmp_path, are refused before any point runs."""
    from semsim.runner import Runner

    monkeypatch.setattr(Runner, "point_rows", lambda *a: pytest.fail("a point ran"))
    path = tmp_path / "sc.yaml"
    path.write_text(_dump(BASE))
    (tmp_path / "afile").write_text("x")
    rng = random.Random(7)
    outs = [tmp_path / "afile", tmp_path / "afile" / "sub", tmp_path / "afile" / "a" / "b",
            str(tmp_path / "nul\x00byte"), tmp_path / ("n" * 300), tmp_path / "ok" / ("n" * 300) / "x"]
    for _ in range(10):
        outs.append(rng.choice(outs[:2]) / "".join(rng.choice("abc/") for _ in range(8)).strip("/"))
    for out in outs:
        assert main(["run", str(path), "--output", str(out), "--quiet"]) == 2, out
        err = _one_line_error(capsys)
        assert "output folder" in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile", "sc.yaml"]


def test_fuzz_valid_variants_are_accepted_with_the_same_points(tmp_path, capsys):
    base_points = load_scenario(dict(BASE)).points()
    variants = valid_variants(random.Random(3))
    assert len(variants) >= 20
    for i, (label, data) in enumerate(variants):
        path = tmp_path / f"ok{i:02d}.yaml"
        path.write_bytes(data)
        assert main(["validate", str(path)]) == 0, (label, capsys.readouterr().err, data)
        cap = capsys.readouterr()
        assert "is valid: 2 points" in cap.out and not cap.err, (label, cap)
        points = load_scenario(path).points()
        assert [(p.key, p.seed) for p in points] == [(p.key, p.seed) for p in base_points], label
    # two of them run end to end, into tmp_path
    for i in (0, 3):
        out = tmp_path / f"run{i}"
        assert main(["run", str(tmp_path / f"ok{i:02d}.yaml"), "--output", str(out), "--quiet", "--no-plots"]) == 0
        capsys.readouterr()
        assert (out / "results.csv").is_file()
