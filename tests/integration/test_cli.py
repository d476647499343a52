import subprocess
import sys

import numpy as np
import pytest

from workbench.cli.main import main


def test_datasets_lists_catalog(capsys):
    assert main(["datasets"]) == 0
    out = capsys.readouterr().out
    assert "mfeat" in out and "profile[216]" in out and "CC BY 4.0" in out


def test_train_then_runs(tmp_path, capsys):
    rc = main(["--runs-dir", str(tmp_path), "train", "--dataset", "synthetic-xor", "--fusion", "gated",
               "--epochs", "2", "--seed", "1"])
    assert rc == 0
    assert "run: " in capsys.readouterr().out
    assert main(["--runs-dir", str(tmp_path), "runs"]) == 0
    out = capsys.readouterr().out
    assert "synthetic-xor-gated-naive-s1" in out and "complete" in out


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    assert main(["train", "--dataset", "does-not-exist", "--epochs", "1"]) == 2
    assert "no dataset called 'does-not-exist'" in capsys.readouterr().err
    d = tmp_path / "bad"
    d.mkdir()
    np.save(d / "a.npy", np.zeros((5, 2)))
    np.save(d / "labels.npy", np.arange(4) % 2)  # two classes: the count mismatch is the fault
    assert main(["datasets", "add", str(d), "--name", "bad"]) == 2
    assert "modality 'a' has 5 samples but labels.npy has 4" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    """`workbench demo` trains on mfeat, runs the analyses, writes the run and an offline HTML report."""
    proc = subprocess.run([sys.executable, "-m", "workbench.cli", "--runs-dir", str(tmp_path / "runs"), "demo"],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = next((tmp_path / "runs").glob("*/report.html"))
    html = report.read_text()
    assert "plotly" in html and 'src="http' not in html  # plotly.js inlined: opens offline
    assert "report: " in proc.stdout and "run folder: " in proc.stdout
    fused = float(next(line.split()[2] for line in proc.stdout.splitlines() if line.strip().startswith("test") and " fused " in line))
    assert fused >= 0.95
