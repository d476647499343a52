"""``workbench train``: train one run and record it. Its flags are derived from
:class:`~workbench.training.config.TrainConfig`: one flag per field, with the field's default,
its description as ``--help`` and ``Literal`` types as choices, so adding a field adds a flag.

    workbench train --dataset NAME [--fusion late|concat|sum|gated|mlp] [--epochs N] [--seed S]
                    [--optimizer adam|sgd] [--lr LR] [--param KEY=VALUE ...] ...

Example
-------
>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_config_arguments(parser)
>>> args = parser.parse_args(["--optimizer", "sgd", "--lr", "0.02", "--param", "alpha=0.5"])
>>> cfg = config_from_args(args)
>>> cfg["optimizer"], cfg["lr"], cfg["strategy_params"], cfg["epochs"]
('sgd', 0.02, {'alpha': 0.5}, 30)
"""

from __future__ import annotations

import argparse
import types
import typing
from typing import Any

from workbench.cli.common import parse_kv
from workbench.training.config import TrainConfig, config_fields

# flags kept from before the flags were derived (``--param`` for ``--strategy-params``)
ALIASES: dict[str, tuple[str, ...]] = {"strategy_params": ("--param",), "task_params": ("--task-param",)}


def _bool_or_text(text: str) -> bool | str:
    """``true``/``false`` (any case) as booleans, other words as they are (``auto``, ``off``)."""
    return {"true": True, "false": False}.get(text.lower(), text)


def parse_spec(text: str) -> dict[str, Any]:
    """``"missing_runs:rate=0.3,mean_length=5,modalities=eeg+eog"`` -> a spec dict (numbers as floats,
    ``+`` separating several modalities).

    Examples
    --------
    >>> parse_spec("gaussian:snr_db=10,modalities=a+b")
    {'kind': 'gaussian', 'snr_db': 10.0, 'modalities': ['a', 'b']}
    """
    kind, _, rest = text.partition(":")
    spec: dict[str, Any] = {"kind": kind.strip()}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep:
            raise argparse.ArgumentTypeError(f"{text!r}: expected KEY=VALUE after the kind, got {item!r}")
        if key.strip() == "modalities":
            spec["modalities"] = [m for m in value.split("+") if m]
            continue
        try:
            spec[key.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: {key.strip()} must be a number, got {value!r}") from None
    return spec


def _argument_options(annotation: Any) -> dict[str, Any]:
    """``add_argument`` options for a field type: choices from ``Literal``, a switch for
    ``bool``, repeatable ``KEY=VALUE`` for a mapping, the inner type of ``X | None``."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in args if a is not type(None)]
        if len(options) == 1:
            return _argument_options(options[0])
        words = [str(v) for a in options for v in (typing.get_args(a) or ((True, False) if a is bool else ()))]
        return {"type": _bool_or_text, "metavar": "{" + ",".join(w.lower() for w in words) + "}"}
    if origin is typing.Literal:
        return {"type": type(args[0]), "choices": list(args)}
    if annotation is bool:
        return {"action": argparse.BooleanOptionalAction}
    if annotation is dict or origin is dict:
        return {"action": "append", "metavar": "KEY=VALUE"}
    if origin is list and args and args[0] in (int, float, str):  # e.g. --ks 10 20, --domains A B
        return {"nargs": "+", "type": args[0]}
    if origin is list:  # a list of specs, one flag each: KIND[:KEY=VALUE,...]
        return {"action": "append", "type": parse_spec, "metavar": "KIND[:KEY=VALUE,...]"}
    return {"type": annotation}


def _is_list(annotation: Any) -> bool:
    """``list[...]`` or ``list[...] | None``."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_list(a) for a in typing.get_args(annotation) if a is not type(None))
    return typing.get_origin(annotation) is list


def add_config_arguments(parser: argparse.ArgumentParser, config_cls: type = TrainConfig) -> None:
    """One ``--field-name`` flag per field of ``config_cls`` (default, help and choices from
    its declaration)."""
    for name, info in config_fields(config_cls).items():
        options = _argument_options(info.annotation)
        default = info.get_default(call_default_factory=True)
        flags = ["--" + name.replace("_", "-"), *ALIASES.get(name, ())]
        # mapping flags collect KEY=VALUE strings; their default is applied by config_from_args
        parser.add_argument(*flags, dest=name, default=None if options.get("action") == "append" else default,
                            help=info.description, **options)
    parser.set_defaults(config_cls=config_cls)


def config_from_args(args: argparse.Namespace, config_cls: type | None = None) -> dict[str, Any]:
    """The config fields of parsed arguments as keywords (``KEY=VALUE`` lists parsed to dicts)."""
    config_cls = config_cls or getattr(args, "config_cls", TrainConfig)
    out: dict[str, Any] = {}
    for name, info in config_fields(config_cls).items():
        value = getattr(args, name)
        if isinstance(value, list) and _is_list(info.annotation):
            pass  # already parsed: one spec per flag, or the words of one flag
        elif isinstance(value, list):
            flag = (ALIASES.get(name) or ("--" + name.replace("_", "-"),))[0]
            value = dict(parse_kv(value, flag=flag))
        elif value is None and _argument_options(info.annotation).get("action") == "append":
            value = info.get_default(call_default_factory=True)
        out[name] = value
    return out


def cmd_train(args: argparse.Namespace) -> int:
    """Check every argument (config, strategy, runs folder) before any work, then train."""
    from workbench.store.runs import RunStore
    from workbench.strategies.base import make_strategy
    from workbench.training.train import train

    config = config_from_args(args)
    args.config_cls(**config)  # every argument is checked before the dataset is loaded or anything is written
    make_strategy(config["strategy"], **config["strategy_params"])
    RunStore(args.runs_dir).check_writable()
    run = train(args.dataset, runs_dir=args.runs_dir, **config)
    print(run.accuracy().query("split == 'test'").to_string(index=False))
    print(f"run: {run.path}")
    return 0


def register(subparsers, config_cls: type = TrainConfig) -> argparse.ArgumentParser:
    """Add ``train`` to the ``workbench`` CLI (flags from ``config_cls``); returns its parser."""
    p = subparsers.add_parser("train", help="train a multimodal model and record the run",
                              formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--dataset", default="mfeat", help="catalog name or data folder")
    add_config_arguments(p, config_cls)
    p.set_defaults(func=cmd_train)
    return p
