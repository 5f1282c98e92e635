"""The benchmarks run and report what they claim (tiny sizes: a smoke test, not a measurement)."""
import importlib.util
import json

import torch
from conftest import REPO


def _load(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_link_throughput_reports_codewords_per_second(tmp_path, capsys):
    bench = _load("link_throughput")
    threads = torch.get_num_threads()
    out = tmp_path / "rows.json"
    assert bench.main(["--devices", "cpu", "--mcs", "qpsk-1/2", "--snr-db", "10", "waterfall", "--threads", "1",
                       "--batch", "8", "--codewords-per-row", "4", "--warmup", "0", "--repeats", "1",
                       "--json", str(out)]) == 0
    assert torch.get_num_threads() == threads
    rows = json.loads(out.read_text())
    assert [r["snr_db"] for r in rows] == [10.0, bench.WATERFALL_DB["qpsk-1/2"]]
    for r in rows:
        assert r["mismatch"] == 0 and r["threads"] == "1" and r["batch"] == 8
        assert min(r["raw_cw_s"], r["full_cw_s"], r["early_cw_s"]) > 0
    assert rows[0]["iterations"] <= 3 and rows[0]["bler"] == 0.0  # far above the waterfall
    assert rows[1]["iterations"] > rows[0]["iterations"]
    assert "early cw/s" in capsys.readouterr().out
