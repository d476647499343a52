"""The training configuration: one declaration of every training parameter.

:class:`TrainConfig` is a pydantic (v2) dataclass. Each field is declared once, with its type,
default, range and description; everything else is derived from that declaration:

- validation, with one-line errors (``ValueError``) that name the field;
- the ``workbench train`` flags (:func:`workbench.cli.train.add_config_arguments`: same default,
  ``--help`` = the description, choices from ``Literal`` types);
- :func:`workbench.training.train.train`'s keywords and the sweep cells' ``train_params``;
- :func:`config_key`, the settings that change results, which both the run id
  (:meth:`TrainConfig.hash`) and :func:`workbench.analyses.compare.config_key` hash.

A pydantic *dataclass* (not a ``BaseModel``) so that ``dataclasses.replace``, ``fields`` and
``asdict`` keep working where configs are copied. This module imports nothing of the project
(torch only lazily, to check ``device``).

Example
-------
>>> from workbench.training.config import TrainConfig, config_key
>>> cfg = TrainConfig(epochs=5, optimizer="sgd", lr=0.02)
>>> cfg.momentum
0.9
>>> "progress" in config_key(cfg), config_key(cfg)["optimizer"]
(False, 'sgd')
>>> TrainConfig(dropout=1.0)
Traceback (most recent call last):
...
ValueError: dropout must be a finite number in [0, 1), got 1.0
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import numbers
import typing
from collections.abc import Iterator, Mapping
from typing import Annotated, Any, Literal, TypeVar

import pydantic
import pydantic.dataclasses
from pydantic import BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo

__all__ = ["Fusion", "Optimizer", "RankingConfig", "TrainConfig", "config_class", "config_dataclass",
           "config_fields", "config_hash", "config_key"]

Fusion = str  # a registered fusion head: workbench.models.FUSIONS (built in: late concat sum gated mlp)
Optimizer = Literal["adam", "adamw", "sgd"]
Schedule = Literal["constant", "cosine"]

#: ``json_schema_extra`` of a field that does not change a run's numbers (left out of :func:`config_key`)
NOT_IN_KEY = {"in_key": False}
#: ``json_schema_extra`` of a field added after runs were recorded: in :func:`config_key` only when it
#: differs from its default, so the run ids of earlier runs (which had the default) stay the same
KEY_IF_SET = {"in_key": "if_set"}


# -- checks shared by the fields (each raises a message naming the field) --------------------------------------
def _integer(low: int) -> Any:
    """``int >= low`` (numpy integers accepted, booleans and floats refused)."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return value  # Optional fields: None is checked by the type
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
            raise ValueError(f"{info.field_name} must be an integer >= {low}, got {value!r}")
        return int(value)

    return BeforeValidator(check)


def _number(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Any:
    """A finite real number in ``[low, high]`` (``(`` / ``)`` with ``low_open`` / ``high_open``)."""
    span = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def check(value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return value  # Optional fields: None is checked by the type
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
        ok = ok and (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
        if not ok:
            raise ValueError(f"{info.field_name} must be a finite number in {span}, got {value!r}")
        return float(value)

    return BeforeValidator(check)


def _one_of(choices: Any) -> Any:
    """A ``Literal`` field: ``unknown NAME 'x'; choose one of (...)``."""
    allowed = typing.get_args(choices)

    def check(value: Any, info: ValidationInfo) -> Any:
        if value not in allowed:
            raise ValueError(f"unknown {info.field_name} {value!r}; choose one of {allowed}")
        return value

    return BeforeValidator(check)


def _registered_fusion() -> Any:
    """A fusion head registered in :mod:`workbench.models.fusion` (built-in or the user's own)."""

    def check(value: Any, info: ValidationInfo) -> Any:
        # imported here, not at module level: the config stays importable without torch's models,
        # and a head registered after this module was imported is still accepted
        from workbench.models.fusion import FUSIONS

        if value not in FUSIONS:
            raise ValueError(f"unknown {info.field_name} {value!r}; choose one of {tuple(FUSIONS)}")
        return value

    return BeforeValidator(check)


def _leaves(value: Any) -> Iterator[Any]:
    if isinstance(value, Mapping):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for v in value:
            yield from _leaves(v)
    else:
        yield value


def _strategy_params(value: Any, info: ValidationInfo) -> Any:
    """A mapping whose numbers are finite (their ranges belong to each strategy or task)."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{info.field_name} must be a mapping, got {type(value).__name__}")
    owner = info.field_name.removesuffix("_params")
    for key, v in value.items():
        if any(isinstance(x, float) and not math.isfinite(x) for x in _leaves(v)):
            raise ValueError(f"{owner} parameter {key!r} must be finite, got {v!r}")
    return dict(value)


def _corruption_specs(value: Any, info: ValidationInfo) -> Any:
    """A list of corruption specs (:func:`workbench.corruptions.make_corruption`), stored as plain dicts."""
    from workbench.corruptions import (
        check_specs,  # lazily: config imports nothing of the project at load
    )

    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{info.field_name} must be a list of corruption specs, got {type(value).__name__}")
    return [c.spec() for c in check_specs(value)]


def _registered_task() -> Any:
    """A task registered in :mod:`workbench.tasks` (built-in or the user's own)."""

    def check(value: Any, info: ValidationInfo) -> Any:
        from workbench.tasks import available_tasks  # lazily: a task registered later is accepted

        if value not in available_tasks():
            raise ValueError(f"unknown {info.field_name} {value!r}; choose one of {tuple(available_tasks())}")
        return value

    return BeforeValidator(check)


def _fast_path(value: Any, info: ValidationInfo) -> Any:
    if value not in (True, False, "auto", "off"):
        raise ValueError(f"fast_path must be True, False, 'auto' or 'off', got {value!r}")
    return value


def _device(value: Any, info: ValidationInfo) -> Any:
    """A device this machine has, so ``cuda`` without CUDA fails here, not inside torch."""
    if value == "auto":
        return value
    import torch

    try:
        dev = torch.device(value)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"device {value!r} is not a device name; use 'auto', 'cpu' or 'cuda'") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {value!r}: CUDA is not available on this machine; use 'auto' or 'cpu'")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {value!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {value!r}: MPS is not available on this machine; use 'auto' or 'cpu'")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {value!r} is not supported; use 'auto', 'cpu' or 'cuda'")
    return value


# -- the declaration ------------------------------------------------------------------------------------------
def _one_line(exc: ValidationError) -> str:
    """The first error of a pydantic ``ValidationError`` as one line naming the field."""
    first = exc.errors(include_url=False)[0]
    name = ".".join(str(p) for p in first["loc"]) or "config"
    if first["type"] == "value_error":
        return str(first["ctx"]["error"])
    if first["type"] == "unexpected_keyword_argument":
        return f"unknown training parameter {name!r}"
    return f"{name}: {first['msg']}, got {first.get('input')!r}"


T = TypeVar("T")


def config_dataclass(cls: type[T]) -> type[T]:
    """Make ``cls`` a validated config: a pydantic dataclass (unknown fields refused) whose
    errors are one-line ``ValueError`` naming the field (not pydantic's multi-line report).
    Use it on subclasses of :class:`TrainConfig` too.
    """
    cls = pydantic.dataclasses.dataclass(cls, config=ConfigDict(extra="forbid"))
    validated_init = cls.__init__

    @functools.wraps(validated_init)
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        try:
            validated_init(self, *args, **kwargs)
        except ValidationError as exc:
            raise ValueError(_one_line(exc)) from None

    cls.__init__ = __init__  # type: ignore[method-assign]
    return cls


@config_dataclass
class TrainConfig:
    """Everything that determines a training run; the fields in :func:`config_key` are hashed into the run id.

    ``lr`` is bounded at 10: above it no optimizer here converges, and values such as ``1e30``
    or ``inf`` only surfaced after an epoch as a non-finite loss. Strategy parameters are
    checked for NaN/inf here (their ranges belong to each strategy).

    Examples
    --------
    >>> TrainConfig(epochs=3).epochs
    3
    >>> TrainConfig(epochs=2.5)
    Traceback (most recent call last):
    ...
    ValueError: epochs must be an integer >= 0, got 2.5
    """

    task: Annotated[str, _registered_task()] = Field(
        "classification", description="what is learned: a registered task (classification, or one of yours)",
        json_schema_extra=KEY_IF_SET)
    task_params: Annotated[dict, BeforeValidator(_strategy_params)] = Field(
        default_factory=dict, description="keyword parameters of the task", json_schema_extra=KEY_IF_SET)
    fusion: Annotated[Fusion, _registered_fusion()] = Field(
        "concat", description="how the modalities' embeddings are combined: a registered fusion head "
                              "(late, concat, sum, gated, mlp, or one of yours)")
    epochs: Annotated[int, _integer(0)] = Field(30, description="passes over the training split")
    batch_size: Annotated[int, _integer(1)] = Field(64, description="samples per optimizer step")
    lr: Annotated[float, _number(0.0, 10.0, low_open=True)] = Field(1e-3, description="learning rate")
    weight_decay: Annotated[float, _number(0.0, 10.0)] = Field(1e-4, description="L2 weight decay of the optimizer")
    optimizer: Annotated[Optimizer, _one_of(Optimizer)] = Field(
        "adam", description="optimizer: adam, adamw (decoupled weight decay), or sgd with momentum "
                            "(imbalance shows most clearly under sgd)")
    schedule: Annotated[Schedule, _one_of(Schedule)] = Field(
        "constant", description="learning-rate schedule over epochs: constant, or cosine down to lr_min",
        json_schema_extra=KEY_IF_SET)
    lr_min: Annotated[float, _number(0.0, 10.0)] = Field(
        1e-6, description="final learning rate of the cosine schedule", json_schema_extra=KEY_IF_SET)
    momentum: Annotated[float, _number(0.0, 1.0, high_open=True)] = Field(
        0.9, description="momentum of sgd (unused by adam)")
    hidden: Annotated[int, _integer(1)] = Field(128, description="width of the encoders' hidden layers")
    embed: Annotated[int, _integer(1)] = Field(64, description="width of each modality's embedding")
    dropout: Annotated[float, _number(0.0, 1.0, high_open=True)] = Field(0.1, description="dropout probability")
    seed: Annotated[int, _integer(0)] = Field(0, description="seed of the split, the initialisation and the batch order")
    strategy: str = Field("naive", description="registered training strategy (see available_strategies())")
    strategy_params: Annotated[dict, BeforeValidator(_strategy_params)] = Field(
        default_factory=dict, description="keyword parameters of the strategy")
    patience: Annotated[int | None, _integer(0)] = Field(
        None, description="stop after this many epochs without a better held-out loss (none: never stop early)")
    val_fraction: Annotated[float, _number(0.0, 1.0, high_open=True)] = Field(
        0.1, description="fraction of the training split held out for early stopping")
    eval_every: Annotated[int, _integer(0)] = Field(
        1, description="evaluate on held-out data every N epochs (0: never)", json_schema_extra=NOT_IN_KEY)
    device: Annotated[str, BeforeValidator(_device)] = Field(
        "auto", description="auto (cuda when present, else cpu), cpu, cuda or cuda:N", json_schema_extra=NOT_IN_KEY)
    fast_path: Annotated[bool | Literal["auto", "off"], BeforeValidator(_fast_path)] = Field(
        "auto", description="capture the training step in a CUDA graph: auto, off, true or false",
        json_schema_extra=NOT_IN_KEY)
    amp: bool = Field(True, description="bfloat16 autocast on CUDA")
    augment: Annotated[list[dict], BeforeValidator(_corruption_specs)] = Field(
        default_factory=list, description="corruptions applied to every training batch (augmentation), e.g. "
                                          "missing:rate=0.3 or gaussian:snr_db=10,modalities=audio",
        json_schema_extra=KEY_IF_SET)
    progress: bool = Field(True, description="show a progress bar", json_schema_extra=NOT_IN_KEY)

    def to_dict(self) -> dict:
        """Every field as a plain dict (as written to a run's ``config.json``)."""
        return dataclasses.asdict(self)

    def hash(self, extra: dict | None = None) -> str:
        """Stable hash of :func:`config_key` (the settings that change results) and ``extra``."""
        return config_hash({**config_key(self), **(extra or {})})


RankingModel = Literal["popularity", "mf", "lightgcn", "imf", "igcn", "micrec"]
Transfer = Literal["mean", "map"]


@config_dataclass
class RankingConfig:
    """Everything that determines a ranking (recommendation) run, as :class:`TrainConfig` does for
    the sample-wise tasks; read by :func:`workbench.training.train_ranking.train_ranking` and stored
    as the ``train`` section of the run's ``config.json`` (with ``task = "ranking"``).

    The defaults are INMO's official configs (batch 2048, Adam at 1e-3, 64 dimensions, 3 layers,
    edge dropout 0.3, auxiliary weight 0.01) and MICRec's anchor settings chosen on tuning seeds
    (:mod:`workbench.training.ranking`).

    Examples
    --------
    >>> RankingConfig(model="igcn", epochs=5).batch_size
    2048
    >>> RankingConfig(model="svd")
    Traceback (most recent call last):
    ...
    ValueError: unknown model 'svd'; choose one of ('popularity', 'mf', 'lightgcn', 'imf', 'igcn', 'micrec')
    """

    model: Annotated[RankingModel, _one_of(RankingModel)] = Field(
        "micrec", description="recommender: popularity, mf (BPR-MF), lightgcn, imf, igcn (INMO) or micrec "
                              "(IGCN with gated item-modality projectors)")
    domains: list[str] | None = Field(None, description="domains to train (all by default)")
    epochs: Annotated[int, _integer(0)] = Field(30, description="passes of len(train) BPR triples per domain")
    batch_size: Annotated[int, _integer(1)] = Field(2048, description="BPR triples per optimizer step and domain")
    lr: Annotated[float, _number(0.0, 10.0, low_open=True)] = Field(1e-3, description="Adam's learning rate")
    l2_reg: Annotated[float | None, _number(0.0, 10.0)] = Field(
        None, description="weight of the l2 term (none: the official configs' value per model)")
    aux_reg: Annotated[float, _number(0.0, 100.0)] = Field(0.01, description="weight of INMO's self-enhanced loss")
    anchors: bool = Field(False, description="tie the users present in both domains (MICRec's cross-domain anchors)")
    anchor_reg: Annotated[float, _number(0.0, 100.0)] = Field(0.03, description="weight of the anchor loss")
    transfer: Annotated[Transfer, _one_of(Transfer)] = Field(
        "mean", description="how an anchor user's other-domain vector enters: mean, or map (learned linear)")
    dim: Annotated[int, _integer(1)] = Field(64, description="embedding width")
    n_layers: Annotated[int, _integer(0)] = Field(3, description="propagation layers (IGCN, MICRec, LightGCN)")
    dropout: Annotated[float, _number(0.0, 1.0, high_open=True)] = Field(
        0.3, description="INMO's edge dropout on the feature matrix")
    feature_ratio: Annotated[float, _number(0.0, 1.0, low_open=True)] = Field(
        1.0, description="share of users and items kept as INMO's templates")
    seed: Annotated[int, _integer(0)] = Field(0, description="seed of the initialisation and the BPR sampler")
    valid_every: Annotated[int, _integer(0)] = Field(
        0, description="early stopping: validation Recall@20 every N epochs (0: never)")
    patience: Annotated[int, _integer(1)] = Field(3, description="validation checks without improvement before stopping")
    ks: Annotated[list[int], BeforeValidator(lambda v, info: _cutoffs(v))] = Field(
        default_factory=lambda: [10, 20], description="list lengths K of the recorded Recall@K and NDCG@K")
    device: Annotated[str, BeforeValidator(_device)] = Field(
        "auto", description="auto (cuda when present, else cpu), cpu, cuda or cuda:N", json_schema_extra=NOT_IN_KEY)
    progress: bool = Field(True, description="show a progress bar", json_schema_extra=NOT_IN_KEY)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def hash(self, extra: dict | None = None) -> str:
        return config_hash({**config_key(self, config_cls=RankingConfig), **(extra or {})})


def _cutoffs(value: Any) -> list[int]:
    if not isinstance(value, (list, tuple)) or not value or any(
            isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1 for k in value):
        raise ValueError(f"ks must be a non-empty list of positive integers, got {value!r}")
    return sorted({int(k) for k in value})


def config_class(train: Mapping[str, Any] | None) -> type:
    """The config class a run's ``train`` section was written from: :class:`RankingConfig` for
    ``task == "ranking"``, else :class:`TrainConfig`."""
    return RankingConfig if (train or {}).get("task") == "ranking" else TrainConfig


def config_fields(config_cls: type = TrainConfig) -> dict[str, pydantic.fields.FieldInfo]:
    """``{name: FieldInfo}`` of a config class (type, default, description, metadata), in declaration order."""
    return dict(config_cls.__pydantic_fields__)


def config_key(config: Any, *, seed: bool = True, config_cls: type | None = None) -> dict:
    """The settings of a config that change its numbers: every field except those declared
    with ``json_schema_extra=NOT_IN_KEY`` (progress, device, fast path, evaluation period).

    ``config`` is a config or a run's stored ``train`` dict: keys the class no longer declares
    are dropped and fields a run predates take their defaults, so runs written by older
    versions keep comparing equal to new ones. ``seed=False`` leaves the seed out (the key of a
    configuration across seeds, :func:`workbench.analyses.compare.config_key`).

    Examples
    --------
    >>> key = config_key({"epochs": 3, "use_groups_as_input": False, "progress": True})
    >>> key["epochs"], key["optimizer"], "use_groups_as_input" in key, "progress" in key
    (3, 'adam', False, False)
    """
    values = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    if config_cls is None:  # a run's stored dict says its task; a config object is its own class
        config_cls = type(config) if dataclasses.is_dataclass(config) else config_class(values)
    key = {}
    for name, info in config_fields(config_cls).items():
        rule = (info.json_schema_extra or {}).get("in_key", True)
        if rule is False or (name == "seed" and not seed):
            continue
        default = info.get_default(call_default_factory=True)
        value = values[name] if name in values else default
        if rule == "if_set" and value == default:
            continue
        key[name] = value
    return key


def config_hash(key: Mapping[str, Any]) -> str:
    """A 10-hex-digit SHA-1 of a key (sorted JSON)."""
    return hashlib.sha1(json.dumps(dict(key), sort_keys=True, default=str).encode()).hexdigest()[:10]
