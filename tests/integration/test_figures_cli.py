"""``workbench figures``: a run's saved results and a sweep's comparison become PDF/SVG figures with captions."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from workbench.cli import main
from workbench.jobs.sweep import sweep
from workbench.store.results import load_result

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "pre_layout_run"


def test_figures_of_a_run_folder(tmp_path, capsys):
    run = tmp_path / "runs" / "pre_layout_run"
    shutil.copytree(FIXTURE, run)
    out = tmp_path / "figs"
    assert main(["figures", str(run), "--format", "svg", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    gap = load_result(run / "results" / "gap")
    fair = load_result(run / "results" / "fairness")
    # one histogram per pair (first three) at the last epoch, one bar chart per group attribute
    want = {f"gap/gap_histogram_{p}_epoch{gap.last_epoch()}.svg" for p in gap.pairs[:3]}
    want |= {f"fairness/fairness_accuracy_by_{a}.svg" for a in fair.attributes}
    # and the disparities of each attribute, the GMM over epochs where more than one was recorded
    want |= {f"fairness/fairness_disparities_{a}.svg" for a in fair.attributes
             if (fair.disparities["attribute"] == a).any()}
    if len(gap.epochs) > 1:
        want.add(f"gap/gap_gmm_{gap.pairs[0]}.svg")
    got = {str(p.relative_to(out)) for p in out.rglob("*.svg")}
    assert got == want
    assert all(p.with_suffix(".txt").exists() for p in out.rglob("*.svg"))
    assert f"{len(want)} figure(s) written" in printed
    # one saved result folder, as PNG
    assert main(["figures", str(run / "results" / "gap"), "--format", "png", "--out", str(tmp_path / "one")]) == 0
    assert sorted(p.name for p in (tmp_path / "one").glob("*.png")) == sorted(Path(w).name.replace(".svg", ".png")
                                                                             for w in want if w.startswith("gap/"))


def test_figures_of_a_sweep_compare_its_configurations(tmp_path, capsys):
    runs = tmp_path / "runs"
    table = sweep({"dataset": "synthetic-imbalance", "strategy": ["naive", "ogm_ge"], "seed": [0, 1], "epochs": 1,
                   "dataset_params": {"n": 200}}, runs_dir=runs, workers=1, progress=False)
    sweep_id = table.attrs["sweep_id"]
    out = tmp_path / "figs"
    assert main(["--runs-dir", str(runs), "figures", sweep_id, "--out", str(out)]) == 0
    names = sorted(p.name for p in (out / "comparison").glob("*.pdf"))
    assert names == ["comparison_acc_fused.pdf", "comparison_paired_acc_fused.pdf"]
    assert (out / "comparison" / "comparison_acc_fused.pdf").read_bytes().startswith(b"%PDF-")
    caption = (out / "comparison" / "comparison_paired_acc_fused.txt").read_text()
    assert "t-interval" in caption and "higher" in caption
    assert isinstance(table, pd.DataFrame) and len(table) == 4


def test_unknown_source_and_bad_format_fail_with_one_line(tmp_path, capsys):
    assert main(["--runs-dir", str(tmp_path), "figures", "no-such-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("workbench: error: SOURCE 'no-such-run'") and err.count("\n") == 1
