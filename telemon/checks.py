"""Checked fields for the plain dataclasses the gateway builds and reads, without pydantic.

The home gateway runs in 60 MiB (issue 19) and pydantic alone would take a third of it, so the
values it makes (a reading, its time correction, its status) and the ones it reads (its identity
file, the server's ``config``) are frozen dataclasses whose ``__post_init__`` applies a table of
rules, one per field: each rule returns the value (normalised: a kind's text to its enum, a list
of flags to a tuple) or raises :class:`ValueError` saying what is wrong. The server validates the
same wire shapes with pydantic (telemon.payload_schema); tests/test_wire_contract.py pins the two
together.

A bad value raises :class:`InvalidValue`, a :class:`ValueError` listing every field at fault.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, fields
from datetime import datetime
from enum import Enum
from typing import Any, TypeVar

Rule = Callable[[Any], Any]
T = TypeVar("T")
E = TypeVar("E", bound=Enum)


class InvalidValue(ValueError):
    """A value the rules refused: ``problems`` pairs each field at fault with what is wrong."""

    def __init__(self, owner: str, problems: Sequence[tuple[str, str]]) -> None:
        self.owner = owner
        self.problems = tuple(problems)
        super().__init__(f"invalid {owner}: " + "; ".join(f"{f}: {m}" for f, m in self.problems))


def check_fields(instance: object, rules: Mapping[str, Rule]) -> None:
    """Apply ``rules`` to the fields of a (frozen) dataclass instance, keeping what they return."""
    problems: list[tuple[str, str]] = []
    for name, rule in rules.items():
        value = getattr(instance, name)
        try:
            checked = rule(value)
        except ValueError as error:
            problems.append((name, str(error)))
            continue
        if checked is not value:
            object.__setattr__(instance, name, checked)  # a frozen dataclass's own normalising
    if problems:
        raise InvalidValue(type(instance).__name__, problems)


def from_json(cls: type[T], data: object, decoders: Mapping[str, Rule] | None = None) -> T:
    """A dataclass from a JSON object: no unknown key, every required one, each value turned
    into its Python type by its decoder (a datetime from its text, a nested object), then
    checked by the class's own rules."""
    name = cls.__name__
    if not isinstance(data, dict):
        raise InvalidValue(name, [("(root)", f"expected an object, got {type(data).__name__}")])
    known = {f.name: f for f in fields(cls) if f.init}  # type: ignore[arg-type]
    problems = [(key, "unknown field") for key in data if key not in known]
    problems += [
        (key, "missing")
        for key, f in known.items()
        if key not in data and f.default is MISSING and f.default_factory is MISSING
    ]
    values: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            continue
        try:
            values[key] = (decoders or {}).get(key, _same)(value)
        except ValueError as error:
            problems.append((key, str(error)))
    if not problems:
        return cls(**values)
    if {key for key, _ in problems}.isdisjoint(known):  # only unknown keys so far
        try:  # what the class's own rules say of the rest, as one list
            cls(**values)
        except InvalidValue as error:
            problems += error.problems
    raise InvalidValue(name, problems)


def _same(value: Any) -> Any:
    return value


# --- rules -------------------------------------------------------------------------------------


def text(*, pattern: str | None = None, min_length: int = 0, max_length: int | None = None) -> Rule:
    compiled = re.compile(pattern) if pattern is not None else None

    def rule(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {type(value).__name__}")
        if len(value) < min_length:
            raise ValueError(f"at least {min_length} character(s), got {len(value)}")
        if max_length is not None and len(value) > max_length:
            raise ValueError(f"at most {max_length} characters, got {len(value)}")
        if compiled is not None and not compiled.match(value):
            raise ValueError(f"{_short(value)} does not match {pattern}")
        return value

    return rule


def integer(*, ge: int | None = None, le: int | None = None, lt: int | None = None) -> Rule:
    def rule(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"expected an integer, got {type(value).__name__}")
        _within(value, ge, le, lt)
        return value

    return rule


def number(*, ge: float | None = None, le: float | None = None) -> Rule:
    """A finite number, kept as a float (an int is one)."""

    def rule(value: Any) -> float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ValueError(f"expected a number, got {type(value).__name__}")
        if not math.isfinite(value):
            raise ValueError(f"{value!r} is not a finite number")
        _within(value, ge, le, None)
        return float(value)

    return rule


def boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {type(value).__name__}")
    return value


def aware_datetime(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"expected a datetime, got {type(value).__name__}")
    if value.utcoffset() is None:
        raise ValueError(f"{value.isoformat()} has no time zone")
    return value


def member(enum: type[E]) -> Rule:
    """One of ``enum``'s values, as the enum (its wire text is accepted too)."""

    def rule(value: Any) -> E:
        try:
            return enum(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in enum)
            raise ValueError(f"{_short(value)} is not one of {allowed}") from None

    return rule


def one_of(*allowed: object) -> Rule:
    def rule(value: Any) -> Any:
        if isinstance(value, bool) or value not in allowed:  # True == 1, but is no version
            raise ValueError(f"{_short(value)} is not one of {', '.join(map(repr, allowed))}")
        return value

    return rule


def instance_of(cls: type) -> Rule:
    def rule(value: Any) -> Any:
        if not isinstance(value, cls):
            raise ValueError(f"expected a {cls.__name__}, got {type(value).__name__}")
        return value

    return rule


def optional(inner: Rule) -> Rule:
    def rule(value: Any) -> Any:
        return None if value is None else inner(value)

    return rule


def tuple_of(item: Rule, *, max_length: int) -> Rule:
    """A sequence (not a string) of at most ``max_length`` items, as a tuple."""

    def rule(value: Any) -> tuple[Any, ...]:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise ValueError(f"expected a list, got {type(value).__name__}")
        if len(value) > max_length:
            raise ValueError(f"at most {max_length} items, got {len(value)}")
        return tuple(_each(item, enumerate(value)))

    return rule


def mapping_of(key: Rule, item: Rule, *, max_length: int | None) -> Rule:
    def rule(value: Any) -> dict[Any, Any]:
        if not isinstance(value, Mapping):
            raise ValueError(f"expected an object, got {type(value).__name__}")
        if max_length is not None and len(value) > max_length:
            raise ValueError(f"at most {max_length} entries, got {len(value)}")
        keys = _each(key, ((k, k) for k in value))
        return dict(zip(keys, _each(item, value.items()), strict=True))

    return rule


def _each(rule: Rule, entries: Any) -> list[Any]:
    out = []
    for where, value in entries:
        try:
            out.append(rule(value))
        except ValueError as error:
            raise ValueError(f"[{_short(where)}]: {error}") from None
    return out


def _within(value: float, ge: float | None, le: float | None, lt: float | None) -> None:
    if ge is not None and value < ge:
        raise ValueError(f"{value!r} is less than {ge!r}")
    if le is not None and value > le:
        raise ValueError(f"{value!r} is more than {le!r}")
    if lt is not None and value >= lt:
        raise ValueError(f"{value!r} is not less than {lt!r}")


# --- JSON decoders -----------------------------------------------------------------------------


def json_datetime(value: Any) -> Any:
    """A datetime from its ISO 8601 text; anything else is left for the field's rule to refuse."""
    if not isinstance(value, str):
        return value
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{_short(value)} is not an ISO 8601 date and time") from None


def _short(value: object, limit: int = 80) -> str:
    spoken = repr(value)
    return spoken if len(spoken) <= limit else spoken[: limit - 1] + "…"
