"""One declaration per training parameter: TrainConfig drives validation, the CLI, train(), sweeps
and the keys of runs and comparisons."""

from __future__ import annotations

import argparse
import dataclasses

import pytest
import torch
from pydantic import Field

from workbench import load_dataset
from workbench.analyses.compare import config_key as compare_key
from workbench.cli.main import build_parser
from workbench.cli.train import config_from_args, register
from workbench.jobs.sweep import Cell, SweepError, expand_grid
from workbench.strategies.base import Strategy, TrainContext, make_strategy
from workbench.training.config import (
    Fusion,
    TrainConfig,
    config_dataclass,
    config_fields,
    config_key,
)
from workbench.training.optim import make_optimizer
from workbench.training.train import run_id_for, train
from workbench.training.trainer import Trainer


@config_dataclass
class WarmupConfig(TrainConfig):
    """A config grown by one field, as a contributor would add one."""

    warmup: int = Field(3, description="epochs of linear learning-rate warm-up")


def _train_parser(config_cls: type = TrainConfig) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="workbench")
    parser.add_argument("--runs-dir", default=None)
    register(parser.add_subparsers(dest="command"), config_cls)
    return parser


def _train_help(parser: argparse.ArgumentParser) -> str:
    action = next(a for a in parser._subparsers._group_actions if isinstance(a, argparse._SubParsersAction))
    return " ".join(action.choices["train"].format_help().split())


# -- the CLI is derived from the config ------------------------------------------------------------------
def test_a_field_added_to_a_subclass_becomes_a_cli_flag_with_its_default_and_help():
    parser = _train_parser(WarmupConfig)
    text = _train_help(parser)
    assert "--warmup WARMUP epochs of linear learning-rate warm-up (default: 3)" in text
    args = parser.parse_args(["train"])
    assert args.warmup == 3
    config = config_from_args(parser.parse_args(["train", "--warmup", "5", "--lr", "0.01"]))
    assert config["warmup"] == 5 and config["lr"] == 0.01
    assert WarmupConfig(**config).warmup == 5
    assert "--warmup" not in _train_help(_train_parser())  # the base config is untouched


def test_cli_defaults_equal_the_config_defaults_and_help_is_the_description():
    parser = build_parser()
    config = config_from_args(parser.parse_args(["train"]))
    assert config == TrainConfig().to_dict()
    text = _train_help(parser)
    for name, info in config_fields().items():
        assert "--" + name.replace("_", "-") in text
        assert " ".join(info.description.split()) in text, name


def test_literal_fields_become_choices_and_booleans_switches():
    parser = build_parser()
    # fusion heads are a registry (one of yours is a valid --fusion), checked against it, not a Literal
    assert Fusion is str and parser.parse_args(["train", "--fusion", "mlp"]).fusion == "mlp"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--optimizer", "rmsprop"])
    args = parser.parse_args(["train", "--optimizer", "sgd", "--no-amp", "--fast-path", "false", "--patience", "2",
                              "--param", "alpha=0.5"])
    config = config_from_args(args)
    assert (config["optimizer"], config["amp"], config["fast_path"], config["patience"]) == ("sgd", False, False, 2)
    assert config["strategy_params"] == {"alpha": 0.5}


# -- validation -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("fields, message", [
    ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'; choose one of ('adam', 'adamw', 'sgd')"),
    ({"momentum": 1.0}, "momentum must be a finite number in [0, 1), got 1.0"),
    ({"fusion": "bogus"}, "unknown fusion 'bogus'"),
    ({"no_such_field": 1}, "unknown training parameter 'no_such_field'"),
    ({"batch_size": True}, "batch_size must be an integer >= 1, got True"),
])
def test_bad_values_are_one_line_errors_naming_the_field(fields, message):
    with pytest.raises(ValueError) as info:
        TrainConfig(**fields)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


def test_every_field_has_a_description_and_copies_revalidate():
    assert all(info.description for info in config_fields().values())
    assert "use_groups_as_input" not in config_fields()
    cfg = TrainConfig(epochs=4)
    assert dataclasses.replace(cfg, seed=2).seed == 2
    with pytest.raises(ValueError, match="seed must be an integer >= 0"):
        dataclasses.replace(cfg, seed=-1)


def test_train_keywords_are_the_config_fields(tmp_path):
    for name in config_fields():
        assert f"``{name}``" in train.__doc__
    with pytest.raises(ValueError, match="unknown training parameter 'epoch'"):
        train("synthetic-xor", epoch=3, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs").exists()


def test_sweep_cells_take_only_config_fields():
    with pytest.raises(SweepError, match=r"\['lrate'\]"):
        expand_grid({"dataset": "mfeat", "lrate": 0.1})
    with pytest.raises(SweepError, match=r"\['epochs'\]"):
        Cell("mfeat", train_params={"epochs": 3})  # the cell's own field
    assert Cell("mfeat", train_params={"optimizer": "sgd"}).train_config().optimizer == "sgd"


# -- one key rule for run ids and comparisons -------------------------------------------------------------
def _run_config(cfg: TrainConfig) -> dict:
    return {"dataset": "mfeat", "dataset_params": {}, "train": cfg.to_dict()}


@pytest.mark.parametrize("change, same_config, same_run", [
    ({"progress": False, "device": "cpu", "eval_every": 0, "fast_path": "off"}, True, True),  # not in the key
    ({"seed": 1}, True, False),  # the same configuration, another run
    ({"lr": 0.01}, False, False),
    ({"optimizer": "sgd"}, False, False),
])
def test_the_run_id_and_the_compare_key_use_one_rule(change, same_config, same_run):
    base, other = TrainConfig(), TrainConfig(**change)
    assert (compare_key(_run_config(base)) == compare_key(_run_config(other))) is same_config
    assert (run_id_for("mfeat", base) == run_id_for("mfeat", other)) is same_run
    assert (config_key(base) == config_key(other)) is same_run


def test_runs_written_before_the_optimizer_field_compare_equal_to_new_adam_runs():
    old = TrainConfig().to_dict()
    del old["optimizer"], old["momentum"]
    old["use_groups_as_input"] = False  # a dead field of older runs
    new = _run_config(TrainConfig())
    assert compare_key({**new, "train": old}) == compare_key(new)


# -- the optimizer comes from the config --------------------------------------------------------------------
class _SwapInSGD(Strategy):
    """The strategies' former ``optimizer="sgd"`` override: replace the trainer's Adam by SGD in ``setup``."""

    name = "swap_in_sgd"

    def __init__(self, *, lr: float = 0.02, momentum: float = 0.9):
        super().__init__()
        self.lr, self.momentum = lr, momentum

    def setup(self, ctx: TrainContext) -> None:
        ctx.optimizer = make_optimizer(ctx.model.parameters(), kind="sgd", lr=self.lr, momentum=self.momentum,
                                       weight_decay=ctx.config.weight_decay)


def test_sgd_from_the_config_gives_the_numbers_of_the_old_strategy_override():
    ds = load_dataset("synthetic-imbalance", n=240, seed=3)
    splits = ds.split(seed=0)
    common = {"epochs": 3, "seed": 1, "batch_size": 32, "progress": False, "device": "cpu"}
    old = Trainer(TrainConfig(**common), strategy=_SwapInSGD(lr=0.05, momentum=0.8)).fit(ds, splits)
    new = Trainer(TrainConfig(**common, optimizer="sgd", lr=0.05, momentum=0.8)).fit(ds, splits)  # naive strategy
    joint = Trainer(TrainConfig(**common, optimizer="sgd", lr=0.05, momentum=0.8),
                    strategy=make_strategy("joint")).fit(ds, splits)
    assert isinstance(new.ctx_.optimizer, torch.optim.SGD) and new.ctx_.optimizer.defaults["momentum"] == 0.8
    for trained in (new, joint):
        for (name, a), b in zip(old.model_.state_dict().items(), trained.model_.state_dict().values(), strict=True):
            torch.testing.assert_close(a, b, msg=name)
    assert old.history["train_loss"].tolist() == new.history["train_loss"].tolist()


def test_sgd_has_no_capturable_optimizer_so_the_trainer_steps_it_eagerly():
    params = torch.nn.Linear(3, 2).parameters()
    with pytest.raises(ValueError, match="optimizer 'sgd' has no capturable implementation"):
        make_optimizer(params, lr=0.02, weight_decay=0.0, kind="sgd", capturable=True)
