"""`semsim report`: docs/results.md from figure results."""
import math

import pytest
from conftest import REPO

from semsim import run
from semsim.report import report
from semsim.results import aggregate, series_name, read_csv


def test_report_tables_match_the_results_and_missing_figures_say_how_to_run_them(tmp_path):
    results = tmp_path / "results"
    sc = {"name": "fig5", "seed": 0, "data": {"name": "procedural", "num": 2, "height": 128, "width": 192},
          "budget": {"cbr": "1/16"}, "channels": ["awgn"], "snr_db": [1, 13],
          "methods": ["jpeg+capacity", {"name": "jpeg+ldpc", "mcs": ["16qam-1/2"]}]}
    csv = run(sc, output=results / "fig5", progress=False)
    page = report(results, tmp_path / "docs" / "results.md", layout=REPO / "docs" / "report.yaml")
    text = page.read_text()

    rows = read_csv(csv)
    for r in rows:
        r["label"] = series_name(r)
    agg = aggregate(rows, ("label", "snr_db"), "psnr")
    line = next(x for x in text.splitlines() if x.startswith("| JPEG+capacity |"))
    cells = [c.strip() for c in line.strip("|").split("|")][1:]
    assert [float(c) for c in cells] == [round(agg[("JPEG+capacity", s)][0], 2) for s in ("1", "13")]
    assert math.isfinite(float(cells[1])) and float(cells[1]) > float(cells[0])  # capacity grows with SNR
    assert "*Not run yet:* `semsim run scenarios/fig4.yaml`" in text
    assert "## Where GenSC is ahead" in text
    pictures = sorted(p.name for p in (tmp_path / "docs" / "figures").iterdir())
    assert "fig5_psnr_vs_snr_procedural_height_128_num_2_width_192_cbr_1_16.png" in pictures or any(
        p.startswith("fig5_psnr_vs_snr") for p in pictures)
    for name in pictures:
        assert f"figures/{name}" in text or name.startswith("fig5_ms_ssim")


def test_a_layout_with_a_misspelt_key_names_it(tmp_path):
    from semsim.errors import ConfigError

    bad = tmp_path / "layout.yaml"
    bad.write_text((REPO / "docs" / "report.yaml").read_text().replace("highlight:", "higlight:"))
    with pytest.raises(ConfigError, match="unknown key 'higlight'; valid keys: 'highlight'"):
        report(tmp_path / "results", tmp_path / "results.md", layout=bad)
    with pytest.raises(ConfigError, match="report layout .* not found"):
        report(tmp_path / "results", tmp_path / "results.md", layout=tmp_path / "none.yaml")


def test_ablation_rows_from_scratch_and_from_shipped_and_a_kept_section(tmp_path):
    import json

    results = tmp_path / "results"
    results.mkdir()
    base = {"steps": 200, "done": True, "what": "the full new recipe", "miou_7": math.nan}
    rows = [dict(base, method="deepjscc", arm="lr 0.0005", init="scratch", images=1600, pixels=1600 * 64 * 64,
                 psnr_1=14.61, psnr_7=15.21, psnr_13=15.36),
            *(dict(base, method="semantic", arm=f"lr {lr:g}", init="shipped", images=1600, pixels=1600 * 128 * 128,
                   psnr_1=20.0 + lr, psnr_7=20.5, psnr_13=20.6, miou_7=0.46, start_psnr_1=19.5, start_psnr_7=19.82,
                   start_psnr_13=19.9, start_miou_7=0.442) for lr in (2e-5, 1e-4))]
    (results / "ablation.json").write_text(json.dumps(rows))
    page = report(results, tmp_path / "results.md", layout=REPO / "docs" / "report.yaml")
    lines = [x for x in page.read_text().splitlines() if x.startswith(("| deepjscc |", "| semantic |"))]
    assert lines == ["| deepjscc | lr 0.0005 | the full new recipe | 1,600 × 64 px | 14.61 | 15.21 | 15.36 |  |",
                     "| semantic | shipped weights | where the continuation arms start | 0 | 19.50 | 19.82 | "
                     "19.90 | 0.442 |",
                     "| semantic | lr 2e-05, from shipped | the full new recipe | 1,600 × 128 px | 20.00 | 20.50 | 20.60 | "
                     "0.460 |",
                     "| semantic | lr 0.0001, from shipped | the full new recipe | 1,600 × 128 px | 20.00 | 20.50 | "
                     "20.60 | 0.460 |"]
    # without the results file, the page's section is kept as it is (measured on another machine)
    (results / "ablation.json").unlink()
    again = report(results, tmp_path / "results.md", layout=REPO / "docs" / "report.yaml")
    assert [x for x in again.read_text().splitlines() if x.startswith(("| deepjscc |", "| semantic |"))] == lines
