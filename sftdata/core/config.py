"""Reading a pipeline config (YAML or TOML) into typed dataclasses, with errors that name the key.

Each section of the file maps onto a dataclass; every key must be one of its fields and of its type.
``--set key.sub=value`` overrides any key (the value is parsed as YAML: numbers, booleans, lists).
"""

from __future__ import annotations

import re
import sys
import types
import typing
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

from .errors import ConfigError, DataError
from .settings import config_fields, key_of, to_plain  # noqa: F401 (to_plain: re-exported)

# PyYAML and tomllib load when a file of theirs is read: `sftdata run --list-keys` reads none, and
# PyYAML's import alone (its Unicode patterns) is a good part of `sftdata run CONFIG --dry-run`'s start
if TYPE_CHECKING:
    import yaml

# A real config has a few hundred values. Aliases let 500 bytes of YAML stand for billions of
# them ("billion laughs"): PyYAML builds them as shared objects, but anything that walks the result
# (a type check's message, a JSON snapshot) expands them. So the expanded size is counted first.
MAX_YAML_NODES = 100_000


class _AliasBomb(Exception):
    def __init__(self, nodes: int, line: int) -> None:
        self.nodes, self.line = nodes, line


def _expanded_size(root: yaml.Node) -> tuple[int, int]:
    """(nodes the document stands for with every alias expanded, line of the worst alias); stops
    counting past MAX_YAML_NODES. Each distinct node is visited once (memoized), so the count
    costs as much as the document is long, not as big as it expands."""
    import yaml

    sizes: dict[int, int] = {}
    worst_line = root.start_mark.line + 1
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_nodes: set[int] = set()  # nodes whose children are still being counted
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                    else list(node.value) if isinstance(node, yaml.SequenceNode) else [])
        if not children_done:
            if id(node) in open_nodes:  # an alias of a node inside itself: infinitely large
                return MAX_YAML_NODES + 1, node.start_mark.line + 1
            open_nodes.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)
            continue
        open_nodes.discard(id(node))
        size = 1 + sum(sizes.get(id(child), 1) for child in children)
        sizes[id(node)] = min(size, MAX_YAML_NODES + 1)
        if size > MAX_YAML_NODES and worst_line == root.start_mark.line + 1:
            worst_line = node.start_mark.line + 1
    return sizes[id(root)], worst_line


@cache
def _loader() -> type[yaml.SafeLoader]:
    """The YAML loader (a class made on first use, with PyYAML's import)."""
    import yaml

    class _UniqueKeyLoader(yaml.SafeLoader):
        """safe_load, except that a key given twice in one mapping is an error: PyYAML would keep the
        last one and silently drop the first (a second ``generate:`` section replacing the first), and
        a document whose aliases expand past MAX_YAML_NODES values is refused before it is built."""

        def construct_document(self, node: yaml.Node) -> Any:
            size, line = _expanded_size(node)
            if size > MAX_YAML_NODES:
                raise _AliasBomb(size, line)
            return super().construct_document(node)

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

    return _UniqueKeyLoader


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
    if path.suffix == ".toml":
        data = _load_toml(path, text)
    else:
        data = _load_yaml(path, text)
    if data is None:
        raise DataError(path, None, "config file is empty")
    if not isinstance(data, dict):
        raise DataError(path, 1, "a config must be a mapping of sections")
    return data


def _load_yaml(path: Path, text: str) -> Any:
    import yaml

    try:
        return yaml.load(text, Loader=_loader())
    except _AliasBomb as exc:
        raise DataError(path, exc.line, f"aliases expand this config to more than {MAX_YAML_NODES:,} values; "
                        "refused (a config needs a few hundred)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise DataError(path, mark.line + 1 if mark else None, f"invalid YAML: {getattr(exc, 'problem', exc)}") from None


def _load_toml(path: Path, text: str) -> Any:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # Python < 3.14 has the line only in the message
        where = re.search(r"at line (\d+)", str(exc))
        line = getattr(exc, "lineno", None) or (int(where.group(1)) if where else None)
        raise DataError(path, line, f"invalid TOML: {exc}") from None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides in place (value parsed as YAML)."""
    import yaml

    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"expected key=value, got {item!r}", "--set")
        try:
            value = yaml.load(raw, Loader=_loader()) if raw.strip() else ""
        except _AliasBomb:
            raise ConfigError(f"aliases expand the value past {MAX_YAML_NODES:,} values; refused", "--set") from None
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
