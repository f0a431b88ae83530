"""Reading a pipeline config (YAML or TOML) into typed dataclasses, with errors that name the key.

Each section of the file maps onto a dataclass; every key must be one of its fields and of its type.
``--set key.sub=value`` overrides any key (the value is parsed as YAML: numbers, booleans, lists).
"""

from __future__ import annotations

import re
import sys
import types
import typing
from pathlib import Path
from typing import Any, Union

import yaml

from .errors import ConfigError, DataError
from .settings import config_fields, key_of, to_plain  # noqa: F401 (to_plain: re-exported)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, except that a key given twice in one mapping is an error: PyYAML would keep the
    last one and silently drop the first (a second ``generate:`` section replacing the first)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:  # an unhashable key: the base class reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given at line {seen[key]})", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_file(path: str | Path) -> dict[str, Any]:
    """Parse a YAML or TOML file into a dict; syntax errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, None, "no such config file")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(path, raw[: exc.start].count(b"\n") + 1, f"invalid UTF-8 at byte {exc.start}") from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(path, mark.line + 1 if mark else None, f"invalid YAML: {getattr(exc, 'problem', exc)}") from None
    except tomllib.TOMLDecodeError as exc:  # Python < 3.14 has the line only in the message
        where = re.search(r"at line (\d+)", str(exc))
        line = getattr(exc, "lineno", None) or (int(where.group(1)) if where else None)
        raise DataError(path, line, f"invalid TOML: {exc}") from None
    if data is None:
        raise DataError(path, None, "config file is empty")
    if not isinstance(data, dict):
        raise DataError(path, 1, "a config must be a mapping of sections")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides in place (value parsed as YAML)."""
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected key=value, got {item!r}", "--set")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"{'.'.join(parts[:-1])} is not a section", "--set")
            node = child
        node[parts[-1]] = value
    return data


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted for floats, scalars for tuples."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise ConfigError(f"expected {' or '.join(_type_name(a) for a in args)}, got {value!r}", key)
    if origin in (list, tuple, frozenset, set):
        items = value if isinstance(value, list) else [value] if isinstance(value, (str, int, float)) else None
        if items is None:
            raise ConfigError(f"expected a list, got {value!r}", key)
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        coerced = [_coerce(v, inner, key) for v in items]
        return origin(coerced) if origin is not list else coerced
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"expected a mapping, got {value!r}", key)
        return value
    if tp is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if tp is bool and not isinstance(value, bool):
        raise ConfigError(f"expected true or false, got {value!r}", key)
    if tp is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"expected an integer, got {value!r}", key)
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ConfigError(f"expected {_type_name(tp)}, got {value!r}", key)
    return value


def build(cls: type, data: Any, prefix: str) -> Any:
    """Build dataclass ``cls`` from ``data``; unknown keys and wrong types raise ConfigError naming the key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping, got {data!r}", prefix)
    hints = typing.get_type_hints(cls)
    fields = {key_of(f): f for f in config_fields(cls)}
    values = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        if name not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"unknown key (known: {known})", f"{prefix}.{key}" if prefix else str(key))
        field = fields[name].name
        values[field] = _coerce(value, hints[field], f"{prefix}.{key}" if prefix else str(key))
    try:
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), prefix) from None
