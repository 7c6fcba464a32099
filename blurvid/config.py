"""A tiny base for the project's dataclass configs (nanoGPT style): dict round trip for checkpoints."""

from __future__ import annotations

import dataclasses
import math
import numbers
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
    def changes(cls, base: dict[str, Any], given: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """The fields that the settings ``given`` change in the config ``base`` describes, as
        ``{name: (was, now)}`` in ``to_dict``'s values: a setting equal to the base's however written (a
        list for a tuple) changes nothing, and keys that are no field are ignored, as by ``from_dict``.
        Raises what the config raises for an invalid value."""
        was = cls.from_dict(base).to_dict()
        now = cls.from_dict({**was, **given}).to_dict()
        return {k: (was[k], now[k]) for k in now if now[k] != was[k]}

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


def check_counts(name: str, value: object, length: int | None = None, least: int = 1) -> None:
    """Raise ValueError unless ``value`` is a whole number of at least ``least`` or, with ``length``,
    a sequence of exactly ``length`` such numbers (an architecture's channel or block counts)."""
    items = value if length is not None and isinstance(value, (tuple, list)) else [value]
    if (length is not None and (not isinstance(value, (tuple, list)) or len(items) != length)) or any(
        isinstance(v, bool) or not isinstance(v, int) or v < least for v in items
    ):
        what = f"{length} whole numbers, each" if length is not None else "a whole number,"
        raise ValueError(f"{name} {value!r}: use {what} at least {least}")


def check_number(
    name: str,
    value: object,
    low: float = 0.0,
    high: float = math.inf,
    high_open: bool = False,
    low_open: bool = False,
) -> None:
    """Raise ValueError unless ``value`` is a finite number (numpy's too) from ``low`` to ``high``
    (above ``low`` with ``low_open``, under ``high`` with ``high_open``)."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (
        (low < value if low_open else low <= value) and (value < high if high_open else value <= high)
    ):
        upto = "" if high == math.inf else f" {'to under' if high_open else 'to'} {high:g}"
        raise ValueError(f"{name} {value!r}: use a number {'above' if low_open else 'from'} {low:g}{upto}")
