"""A tiny base for the project's dataclass configs (nanoGPT style): dict round trip for checkpoints."""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

T = TypeVar("T", bound="Config")


class Config:
    """Mixin for ``@dataclass`` configs: ``to_dict()`` / ``from_dict()`` survive a JSON round trip.

    ``from_dict`` ignores unknown keys (a newer checkpoint may carry more) and turns JSON lists back
    into tuples where the field's default is a tuple.
    """

    @classmethod
    def unknown_keys(cls, d: dict[str, Any]) -> list[str]:
        """The keys of ``d`` that name no field of this config (``from_dict`` would drop them)."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        return [k for k in d if k not in names]

    def to_dict(self) -> dict[str, Any]:
        """Every field as JSON-ready values (tuples stay tuples; JSON makes them lists)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[T], d: dict[str, Any]) -> T:
        """The config from ``to_dict``'s output or its JSON: lists become tuples where the field is a
        tuple, keys that are no field are ignored (callers that must refuse them check first)."""
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        kw = {}
        for k, v in d.items():
            if k not in fields:
                continue
            f = fields[k]
            default = f.default if f.default is not dataclasses.MISSING else None
            kw[k] = tuple(v) if isinstance(v, list) and isinstance(default, tuple) else v
        return cls(**kw)
