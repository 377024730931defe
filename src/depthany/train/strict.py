"""Strict conversion of plain mappings (parsed YAML) into typed dataclasses, and dotted-key overrides.

Generic over any dataclass tree: nested dataclasses, ``X | None``, ``Literal[...]``, ``tuple[X, ...]``,
fixed tuples, ``dict[str, Any]`` and the scalar types. Unknown keys and wrong types raise :class:`FieldError`
with the dotted key, so callers can say which file (or ``--set``) it came from.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from typing import Any, Literal, Union

import yaml


class RecipeError(ValueError):
    """A recipe is malformed: unknown key, wrong type or out-of-range value. The message names the key."""


class FieldError(Exception):
    """A problem at a dotted key; the loader turns it into a :class:`RecipeError` naming the file."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key, self.message = key, message


def from_dict(cls: type[Any], data: Any, prefix: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping; keys outside ``cls``'s fields and mistyped values are errors.

    Raises:
        FieldError: naming the dotted key (``prefix`` + field) and what is wrong, with a close-match hint.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FieldError(prefix.rstrip(".") or "<recipe>", f"expected a mapping of keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = [k for k in data if k not in fields]
    if unknown:
        k = str(unknown[0])
        close = difflib.get_close_matches(k, list(fields), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise FieldError(prefix + k, f"unknown key{hint}; known keys here: {', '.join(fields)}")
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = _coerce(data[name], hints[name], prefix + name)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise FieldError(prefix + name, "required key is missing")
    try:
        return cls(**kwargs)
    except ValueError as e:  # a section's own consistency check (__post_init__)
        raise FieldError(prefix.rstrip(".") or "<recipe>", str(e)) from None


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check (and lightly convert) one value against a type annotation."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key) if len(inner) == 1 else value
    if origin is Literal:
        if value not in args:
            raise FieldError(key, f"must be one of {', '.join(map(repr, args))}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key + ".")  # type: ignore[arg-type]
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise FieldError(key, f"expected a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}.{i}") for i, v in enumerate(value))
        if len(value) != len(args):
            raise FieldError(key, f"expected a list of {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, f"{key}.{i}") for i, (v, a) in enumerate(zip(value, args)))
    if origin is dict:
        if not isinstance(value, dict):
            raise FieldError(key, f"expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise FieldError(key, f"expected true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError(key, f"expected an integer, got {value!r}")
        return value
    if tp is float:
        # YAML 1.1 reads "5e-6" (no dot) as a string; accept any numeric spelling.
        if isinstance(value, bool):
            raise FieldError(key, f"expected a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return float(value)
        except (TypeError, ValueError):
            raise FieldError(key, f"expected a number, got {value!r}") from None
    if tp is str:
        if not isinstance(value, str):
            raise FieldError(key, f"expected a string, got {value!r}")
        return value
    raise TypeError(f"recipe field {key} has an unsupported annotation {tp!r}")  # a bug in this module


def parse_override(text: str) -> tuple[str, Any]:
    """``"optim.lr=1e-4"`` -> ``("optim.lr", "1e-4")`` with the value parsed as YAML (``null``, lists, ...)."""
    if "=" not in text:
        raise RecipeError(f"--set {text!r}: expected KEY=VALUE, for example optim.lr=1e-4")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise RecipeError(f"--set {text!r}: malformed key {key!r}")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as e:
        raise RecipeError(f"--set {text!r}: value is not valid YAML ({e})") from None
    return key, value


def apply_override(data: dict[str, Any], key: str, value: Any) -> None:
    """Set dotted ``key`` in a nested dict in place; numeric parts index lists (``data.sources.0.path``).

    Index ``len(list)`` appends a new entry, so ``--set data.sources.0.path=X`` works on an empty list.
    """
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        where = ".".join(parts[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) > len(node):
                raise RecipeError(f"--set {key}: {where}: list index must be 0..{len(node)}")
            idx = int(part)
            if idx == len(node):
                node.append(value if last else {})
            elif last:
                node[idx] = value
            node = node[idx]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                if node.get(part) is None:
                    node[part] = [] if parts[i + 1].isdigit() else {}
                node = node[part]
        else:
            raise RecipeError(f"--set {key}: {'.'.join(parts[:i])} is a value, not a section")


def to_plain(obj: Any) -> Any:
    """Dataclasses -> dicts and tuples -> lists, recursively (YAML- and ``weights_only``-safe)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {k: to_plain(x) for k, x in obj.items()}
    return obj
