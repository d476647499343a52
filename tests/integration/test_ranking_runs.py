"""Ranking runs in the run store: ids, resume, lock, reload, the runs table, the dashboard and the summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from data_catalog.recsys import load_recdata
from workbench import train
from workbench.analyses.runs_table import runs_table
from workbench.store.runs import RunError, RunLockedError, RunStore, load_run
from workbench.training.ranking import evaluate_ranking, fit_ranking, score_vectors
from workbench.training.train_ranking import load_ranking_fit, ranking_run_id, train_ranking

SMALL = {"n_users": 120, "n_items": 60}
FAST = {"epochs": 4, "n_layers": 1, "batch_size": 512, "lr": 1e-2, "progress": False}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("ranking-runs")


@pytest.fixture(scope="module")
def micrec_run(root):
    return train_ranking("synthetic-recsys", dataset_params=SMALL, model="micrec", anchors=True, runs_dir=root,
                         n_boot=100, **FAST)


def test_run_folder_reads_back_with_the_numbers_of_the_fit(micrec_run, root):
    run = load_run(micrec_run.run_id, root)
    assert run.config["train"]["task"] == "ranking" and run.result_names() == [
        "ranking_shapley", "recommendation", "top_k_A", "top_k_B"]
    data = load_recdata("synthetic-recsys", **SMALL)
    fit = load_ranking_fit(run)  # rebuilt from model.pt and the data loaded again by name
    for users, setting in (("known", "transductive"), ("new", "inductive")):
        fresh = evaluate_ranking(fit, data, users=users)
        stored = run.predictions[run.predictions["setting"] == setting]
        np.testing.assert_allclose(stored["ndcg@20"].to_numpy(), fresh["ndcg@20"].to_numpy(), atol=1e-6)
        for d in ("A", "B"):
            mean = fresh.loc[fresh["domain"] == d, "recall@20"].mean()
            assert run.metrics["test"][f"{d}/{setting}/recall@20"] == pytest.approx(mean)
    acc = run.accuracy().set_index("model")
    assert acc.loc["A (transductive)", "accuracy"] == pytest.approx(
        run.predictions.query("domain == 'A' and setting == 'transductive'")["ndcg@20"].mean())
    assert set(acc["measure"]) == {"NDCG@20 (mean over users)"}
    # the reloaded fit scores like the trained one
    trained = score_vectors(micrec_run.extras["fit"])
    for d, (U, V) in score_vectors(fit).items():
        np.testing.assert_allclose(U @ V.T, trained[d][0] @ trained[d][1].T, atol=1e-5)
    assert "group_group" in run.predictions  # the users' group attribute rides along


def test_run_id_is_the_settings_and_the_data(micrec_run):
    data = load_recdata("synthetic-recsys", **SMALL)
    from workbench.training.config import RankingConfig
    from workbench.training.train_ranking import recdata_fingerprint

    cfg = RankingConfig(model="micrec", anchors=True, **FAST)
    assert ranking_run_id(data.name, cfg, SMALL, recdata_fingerprint(data)) == micrec_run.run_id
    other = load_recdata("synthetic-recsys", **{**SMALL, "seed": 1})
    assert ranking_run_id(data.name, cfg, SMALL, recdata_fingerprint(other)) != micrec_run.run_id
    assert ranking_run_id(data.name, RankingConfig(model="micrec", anchors=True, **{**FAST, "progress": True}),
                          SMALL, recdata_fingerprint(data)) == micrec_run.run_id  # progress changes no number
    data.name = "../<img src=x>"
    rid = ranking_run_id(data.name, cfg)
    assert "/" not in rid and "<" not in rid and not rid.startswith(".")


def test_an_interrupted_run_resumes_to_the_numbers_of_an_uninterrupted_one(tmp_path):
    kw = {**FAST, "model": "igcn", "valid_every": 1, "patience": 5}
    straight = train_ranking("synthetic-recsys", dataset_params=SMALL, save=False, analyses=False, **kw)
    data = load_recdata("synthetic-recsys", **SMALL)
    store = RunStore(tmp_path)
    folder = store.incomplete_path(straight.run_id)
    folder.mkdir(parents=True)
    # a run killed after 2 of its 4 epochs leaves this checkpoint behind
    fit_ranking(data, checkpoint_path=folder / "checkpoint.pt", **{**kw, "epochs": 2})
    resumed = train_ranking("synthetic-recsys", dataset_params=SMALL, runs_dir=tmp_path, analyses=False, **kw)
    assert resumed.run_id == straight.run_id
    pd.testing.assert_frame_equal(resumed.history, straight.history)
    pd.testing.assert_frame_equal(resumed.predictions, straight.predictions)
    assert not (folder / "checkpoint.pt").exists() and store.is_complete(resumed.run_id)
    # a second process on the same run is refused at once
    with store.lock(resumed.run_id), pytest.raises(RunLockedError, match="another process"):
        train_ranking("synthetic-recsys", dataset_params=SMALL, runs_dir=tmp_path, analyses=False, **kw)


def test_a_bad_checkpoint_is_kept_aside_and_training_restarts(tmp_path):
    kw = {**FAST, "model": "mf", "epochs": 2}
    straight = train_ranking("synthetic-recsys", dataset_params=SMALL, save=False, analyses=False, **kw)
    folder = RunStore(tmp_path).incomplete_path(straight.run_id)
    folder.mkdir(parents=True)
    (folder / "checkpoint.pt").write_bytes(b"PK\x03\x04 truncated")
    with pytest.warns(RuntimeWarning, match="moved it to checkpoint.bad-1"):
        run = train_ranking("synthetic-recsys", dataset_params=SMALL, runs_dir=tmp_path, analyses=False, **kw)
    # kept: it moves with the run's folder into place, as the Trainer's bad checkpoints do
    assert (run.path / "checkpoint.bad-1").read_bytes() == b"PK\x03\x04 truncated"
    pd.testing.assert_frame_equal(run.predictions, straight.predictions)


def test_one_line_errors_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="unknown model 'svd'"):
        train_ranking("no-such-data", model="svd", runs_dir=tmp_path)  # the settings first, then the data
    with pytest.raises(ValueError, match="unknown interaction dataset 'no-such-data'"):
        train_ranking("no-such-data", runs_dir=tmp_path)
    with pytest.raises(ValueError, match="dataset 'synthetic-recsys': bad parameters"):
        train_ranking("synthetic-recsys", dataset_params={"n_user": 10}, runs_dir=tmp_path)
    with pytest.raises(ValueError, match="domains: 'C' is not a domain"):
        train_ranking("synthetic-recsys", dataset_params=SMALL, domains=["C"], runs_dir=tmp_path)
    with pytest.raises(ValueError, match="anchors=True needs exactly two domains"):
        train_ranking("synthetic-recsys", dataset_params=SMALL, domains=["A"], anchors=True, runs_dir=tmp_path)
    with pytest.raises(ValueError, match="ks must be"):
        train_ranking("synthetic-recsys", ks=[0], runs_dir=tmp_path)
    with pytest.raises(ValueError, match="task 'ranking' takes no 'split'"):
        train("synthetic-recsys", task="ranking", split={"train": 0.5}, runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # nothing written


def test_train_with_task_ranking_is_the_same_run(micrec_run, root):
    run = train("synthetic-recsys", task="ranking", task_params={"model": "micrec", "anchors": True},
                dataset_params=SMALL, runs_dir=root, save=False, analyses=False, **FAST)
    assert run.run_id == micrec_run.run_id
    pd.testing.assert_frame_equal(run.predictions, micrec_run.predictions)


def test_popularity_run_has_no_weights_and_still_reloads(tmp_path):
    run = train_ranking("synthetic-recsys", dataset_params=SMALL, model="popularity", runs_dir=tmp_path,
                        analyses=False, progress=False)
    assert not (run.path / "model.pt").exists()
    loaded = load_run(run.run_id, tmp_path)
    fit = load_ranking_fit(loaded)
    assert fit.kind == "popularity" and list(loaded.history.columns) == ["epoch"]
    with pytest.raises(RunError, match="other data"):
        load_ranking_fit(loaded, load_recdata("synthetic-recsys", **{**SMALL, "seed": 3}))
    with pytest.raises(NotImplementedError, match="load_ranking_fit"):
        loaded.load_model()


def test_runs_table_dashboard_and_summary_show_the_ranking_run(micrec_run, root):
    from widgets.dashboard import Dashboard
    from widgets.summary import run_takeaways

    table = runs_table(root).to_frame().set_index("run_id")
    row = table.loc[micrec_run.run_id]
    assert (row["fusion"], row["strategy"], row["status"]) == ("micrec", "bpr+anchors", "complete")
    assert "anchors=True" in row["params"] and "batch_size" in row["params"]  # differs from RankingConfig's 2048
    dash = Dashboard(root)
    dash.run_select.value = micrec_run.run_id
    assert [t.name for t in dash.tabs] == ["overview", "ranking_shapley", "recommendation", "top_k_A", "top_k_B",
                                           "compare runs"]
    bars = {m: y for m, y in zip(dash.accuracy_plot.object.data[0].x, dash.accuracy_plot.object.data[0].y,
                                 strict=True)}
    first = run_takeaways(load_run(micrec_run.run_id, root))[0]
    a = micrec_run.metrics["test"]["A/transductive/ndcg@20"]
    assert f"A {a:.3f} for users trained on" in first
    assert any(v == pytest.approx(a) for v in bars.values()) or any(
        t.y is not None and any(y == pytest.approx(a) for y in t.y) for t in dash.accuracy_plot.object.data)


def test_the_fit_runs_on_the_configured_device():
    data = load_recdata("synthetic-recsys", **SMALL)
    fit = fit_ranking(data, model="micrec", device="auto", epochs=1, n_layers=1, progress=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert all(m.device.type == expected and m.adj.device.type == expected for m in fit.models.values())


def test_recommend_command_records_a_run_and_refuses_bad_flags(tmp_path, capsys):
    from workbench.cli.main import main

    code = main(["--runs-dir", str(tmp_path), "recommend", "--data-param", "n_users=80", "--data-param",
                 "n_items=40", "--model", "mf", "--epochs", "1", "--ks", "5", "10", "--no-analyses", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0 and "NDCG@10 (mean over users)" in out
    (run_id,) = RunStore(tmp_path).run_ids()
    run = load_run(run_id, tmp_path)
    assert run.config["train"]["ks"] == [5, 10] and run.config["dataset_params"] == {"n_users": 80, "n_items": 40}
    assert main(["--runs-dir", str(tmp_path), "recommend", "--data-param", "n_user=3"]) == 2
    assert "bad parameters ['n_user']" in capsys.readouterr().err
    assert main(["--runs-dir", str(tmp_path), "recommend", "--lr", "-1"]) == 2
    assert "lr must be a finite number" in capsys.readouterr().err
    assert RunStore(tmp_path).run_ids() == [run_id]


def test_panels_redraw_what_the_controls_select(micrec_run, root):
    from widgets.panels.recommendation import top_k_panel
    from widgets.summary import load_run_results
    from workbench.analyses.recommendation import top_k_list
    from workbench.display import _panel

    run = load_run(micrec_run.run_id, root)  # a loaded run: the panel rebuilds the fit from model.pt
    panel = top_k_panel(run)
    data = load_recdata("synthetic-recsys", **SMALL)
    user = int(data.domains["B"].test[~np.isin(data.domains["B"].test[:, 0], data.new_users)][0, 0])
    panel.controls["domain"].value = "B"
    panel.controls["user"].value = user
    panel.controls["k"].value = 7
    expected = top_k_list(micrec_run.extras["fit"], data, user=user, domain="B", k=7).items
    cells = panel.view.figure.data[0].cells.values
    assert [int(v) for v in cells[1]] == expected["item"].tolist()
    assert f"user {user} in domain B" in panel.status.value and "top 7" in panel.status.value

    result = load_run_results(run)["recommendation"]
    box = _panel(result)  # the registered panel of a RecommendationResult
    box.controls["metric"].value, box.controls["k"].value = "recall", 10
    drawn = sorted(float(y) for t in box.views["metrics"].figure.data for y in t.y)
    want = result.metrics.query("metric == 'recall' and k == 10")["value"]
    np.testing.assert_allclose(drawn, sorted(want), atol=1e-9)


def test_ranking_runs_compare_across_seeds(tmp_path):
    from workbench.analyses.runs_table import compare_runs, configuration_labels

    runs = [train_ranking("synthetic-recsys", dataset_params=SMALL, model="mf", seed=s, runs_dir=tmp_path,
                          analyses=False, **{**FAST, "epochs": 1}) for s in (0, 1, 2)]
    table = runs_table(tmp_path)
    cmp = compare_runs(runs, configuration_labels(table, [r.run_id for r in runs]))
    row = cmp.summary.set_index("metric").loc["A/transductive/ndcg@20"]
    values = [r.metrics["test"]["A/transductive/ndcg@20"] for r in runs]
    assert row["n"] == 3 and row["mean"] == pytest.approx(np.mean(values))


def test_fit_ranking_defaults_are_the_configs():
    """fit_ranking's keywords and RankingConfig declare the same settings with the same defaults."""
    import inspect

    from workbench.training.config import RankingConfig, config_fields

    keywords = {k: p.default for k, p in inspect.signature(fit_ranking).parameters.items() if k != "data"}
    fields = {k: f.get_default(call_default_factory=True) for k, f in config_fields(RankingConfig).items()}
    shared = set(keywords) & set(fields)
    assert shared == set(fields) - {"ks"}  # every setting but the evaluation's list lengths
    assert {k: keywords[k] for k in shared} == {k: fields[k] for k in shared}


def test_dashboard_overview_says_what_the_run_shows(micrec_run, root):
    from widgets.dashboard import Dashboard
    from widgets.summary import run_takeaways_html

    dash = Dashboard(root)
    dash.run_select.value = micrec_run.run_id
    assert "What this run says" in dash.summary.object
    assert dash.summary.object.endswith(run_takeaways_html(load_run(micrec_run.run_id, root)))


def test_html_report_of_a_ranking_run_says_what_it_shows(micrec_run, root, tmp_path):
    from widgets.summary import run_takeaways_html
    from workbench.cli.report import render_run_report

    run = load_run(micrec_run.run_id, root)
    html = render_run_report(run.path, tmp_path / "report.html").read_text()
    assert run_takeaways_html(run) in html  # the summary the run panel and the dashboard show
    assert "NDCG@20 (mean over users) by model: transductive, inductive" in html
    assert "unimodal head" not in html.split("Headline scores", 1)[1].split("Learning curves", 1)[0]
    assert all(f"<h3>{name}</h3>" in html for name in run.result_names())
    assert "Traceback" not in html and "cannot be loaded" not in html
