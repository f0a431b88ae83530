"""Settings declared once: each stage's dataclass field carries its default, help text, choices and
whether changing it changes what the stage produces. Everything else is derived from the dataclass:

- :func:`click_options` and :func:`from_options` — the stage command's options and the config they build;
- :func:`section` — the stage's section of ``sftdata run``'s config (what ``config.json`` records);
- :func:`hashed` — the settings that enter the stage hash of ``sftdata run`` (``hashed=False`` ones,
  like concurrency or timeouts, can change without re-running the stage);
- :func:`resumable` — the settings that may change between a run and its resume;
- :func:`describe` — the listing behind ``sftdata run --list-keys``.

Declare a field with :func:`setting`::

    @dataclass
    class CleanConfig:
        outlier_z: float = setting(3.5, help="Robust z-score above which an output is too long.")
        no_rule: list[str] = setting(list, help="Switch a rule off.", metavar="NAME")

See docs/architecture.md, "Settings".
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Union

_MISSING = dataclasses.MISSING


def setting(default: Any = _MISSING, *, help: str, hashed: bool = True, resumable: bool | None = None,
            choices: Iterable[str] | None = None, cli: bool = True, config: bool = True,
            by_pipeline: bool = False, key: str | None = None, option: str | None = None,
            metavar: str | None = None, flag: str | None = None, envvar: str | None = None,
            cli_default: Any = _MISSING, click_type: Any = None, split: bool = True,
            path: bool | Callable[[Any], bool] = False, must_exist: bool = True) -> Any:
    """A dataclass field with its documentation.

    ``default``: a value, or a callable (``list``, ``lambda: [...]``) for a mutable default.
    ``hashed``: changing it changes the stage's output (so ``sftdata run`` re-runs the stage).
    ``resumable``: it may change between a run and its resume (default: ``not hashed``).
    ``cli``: exposed as a command-line option; ``config``: a key of the ``sftdata run`` config
    (False for what only the library or one command sets); ``by_pipeline``: ``sftdata run`` sets it
    (from the stage before), so a config file may not.
    ``key``: the config-file key when not the field name; ``option``: the option's name when not
    ``--<field-name>``; ``flag``: for a bool, the pair (``"--packing/--no-packing"``).
    ``envvar``: the environment variable the option (and the ``sftdata run`` section) reads.
    ``cli_default``: the command's default when it differs from the library's.
    ``click_type``: the option's click type (e.g. ``click.Path(dir_okay=False)``).
    ``split``: a list option also takes comma-separated values (False for paths).
    ``path``: the value is a file or directory (or a list of them): in a ``sftdata run`` config file a
    relative one is read from the config file's directory, and a missing one is an error at load. A
    callable decides from the built config (``llm.model`` is a path only for the local backend).
    ``must_exist=False``: a value that names nothing beside the config is kept as given (a model name:
    the backend says what is wrong with it).
    """
    metadata = {"help": help, "hashed": hashed, "resumable": (not hashed) if resumable is None else resumable,
                "choices": tuple(choices) if choices is not None else None, "cli": cli, "config": config,
                "by_pipeline": by_pipeline, "key": key, "option": option, "metavar": metavar, "flag": flag,
                "envvar": envvar, "cli_default": cli_default, "click_type": click_type, "split": split,
                "path": path, "must_exist": must_exist}
    if default is not _MISSING and callable(default):
        return dataclasses.field(default_factory=default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def click_path(**kwargs: Any) -> tuple[str, dict[str, Any]]:
    """A ``click.Path(**kwargs)`` option type, built when the option is (so declaring it imports no click)."""
    return ("path", kwargs)


def fields(cls: Any) -> list[dataclasses.Field]:
    """The fields of ``cls`` (a dataclass or an instance) declared with :func:`setting`."""
    return [f for f in dataclasses.fields(cls) if "help" in f.metadata]


def config_fields(cls: Any) -> list[dataclasses.Field]:
    """The fields that are keys of the ``sftdata run`` config (setting() ones without ``config=False``,
    and plain fields)."""
    return [f for f in dataclasses.fields(cls) if f.init and f.metadata.get("config", True)]


def key_of(f: dataclasses.Field) -> str:
    """The field's key in a config file."""
    return f.metadata.get("key") or f.name


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def path_fields(config: Any) -> list[dataclasses.Field]:
    """The config fields of ``config`` (a built dataclass) whose values are files or directories."""
    found = []
    for f in config_fields(config):
        marker = f.metadata.get("path", False)
        if marker is True or (callable(marker) and marker(config)):
            found.append(f)
    return found


def section(config: Any) -> dict[str, Any]:
    """``config`` as its section of a ``sftdata run`` config, plain JSON values, keys as a file spells them."""
    return {key_of(f): to_plain(getattr(config, f.name)) for f in config_fields(config)}


def hashed(config: Any) -> dict[str, Any]:
    """The settings of ``config`` that change what its stage produces (plain JSON values)."""
    skip = {key_of(f) for f in dataclasses.fields(config) if f.metadata.get("hashed") is False}
    return {k: v for k, v in section(config).items() if k not in skip}


def resumable(*classes: type) -> set[str]:
    """Names of the settings of ``classes`` that may change between a run and its resume."""
    return {key for cls in classes for f in dataclasses.fields(cls) if f.metadata.get("resumable")
            for key in (f.name, key_of(f))}


def by_pipeline(cls: type) -> set[str]:
    """Keys that ``sftdata run`` sets itself (a config file may not)."""
    return {key_of(f) for f in dataclasses.fields(cls) if f.metadata.get("by_pipeline")}


def environment(cls: type) -> dict[str, str]:
    """Environment variable -> config key, for the settings that read one."""
    return {f.metadata["envvar"]: key_of(f) for f in fields(cls) if f.metadata.get("envvar")}


def option_name(f: dataclasses.Field) -> str:
    return f.metadata.get("option") or "--" + f.name.replace("_", "-")


def _base_type(tp: Any) -> tuple[Any, bool, bool]:
    """(scalar type, is a list, is optional) of an annotation."""
    optional = False
    origin = typing.get_origin(tp)
    if origin is Union or str(origin) == "<class 'types.UnionType'>":
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = len(args) < len(typing.get_args(tp))
        tp = args[0] if len(args) == 1 else str
        origin = typing.get_origin(tp)
    if origin in (list, tuple, set, frozenset):
        inner = (typing.get_args(tp) or (str,))[0]
        return (str if inner is Ellipsis else inner), True, optional
    return tp, False, optional


def click_options(cls: type, *, skip: Iterable[str] = ()) -> Callable[[Callable], Callable]:
    """A decorator adding one click option per CLI setting of ``cls``, defaults and help from the fields.

    A list setting is repeatable and also takes comma-separated values (:func:`from_options` splits them).
    """
    hints = typing.get_type_hints(cls)
    skipped = set(skip)

    def decorate(func: Callable) -> Callable:
        for f in reversed(fields(cls)):
            if not f.metadata.get("cli") or f.name in skipped:
                continue
            func = _option(f, hints[f.name])(func)
        return func

    return decorate


def _cli_default(f: dataclasses.Field) -> Any:
    value = f.metadata.get("cli_default", _MISSING)
    return default_of(f) if value is _MISSING else value


def _option(f: dataclasses.Field, annotation: Any) -> Callable:
    import click

    tp, many, _ = _base_type(annotation)
    meta = f.metadata
    default = _cli_default(f)
    help_text = meta["help"]
    choices = meta.get("choices")
    kwargs: dict[str, Any] = {"help": help_text}
    for name in ("metavar", "envvar"):
        if meta.get(name):
            kwargs[name] = meta[name]
    if meta.get("envvar") and "[env:" not in help_text:
        kwargs["help"] = f"{help_text} [env: {meta['envvar']}]"
    if tp is bool and not many:
        decl = meta.get("flag") or option_name(f)
        if "/" in decl:
            return click.option(decl, f.name, default=default, **kwargs)
        return click.option(decl, f.name, is_flag=True, default=bool(default), **kwargs)
    if many:
        if choices and meta.get("split") and "metavar" not in kwargs:
            kwargs["help"] = f"{help_text} One of: {', '.join(choices)}."
        if default and meta.get("split"):  # one comma-separated value, shown as a user would type it
            kwargs.update(default=(",".join(map(str, default)),), show_default=True)
        elif default:
            kwargs.update(default=tuple(default), show_default=True)
        return click.option(option_name(f), f.name, multiple=True,
                            type=str if meta.get("split") else _click_type(tp, None, meta.get("click_type")),
                            **kwargs)
    kwargs["type"] = _click_type(tp, choices, meta.get("click_type"))
    kwargs["default"] = default
    kwargs["show_default"] = default is not None
    return click.option(option_name(f), f.name, **kwargs)


def _click_type(tp: Any, choices: tuple[str, ...] | None, declared: Any = None) -> Any:
    import click

    if isinstance(declared, tuple) and declared and declared[0] == "path":
        return click.Path(**declared[1])
    if declared is not None:
        return declared
    if choices:
        return click.Choice(list(choices))
    return {int: int, float: float, str: str}.get(tp, str)


def split_values(values: Iterable[Any]) -> list[Any]:
    """Repeated and comma-separated option values as one list (``-x a,b -x c`` -> ``[a, b, c]``)."""
    out: list[Any] = []
    for value in values or ():
        if isinstance(value, str):
            out += [v.strip() for v in value.split(",") if v.strip()]
        else:
            out.append(value)
    return out


def _convert(values: list[Any], inner: Any) -> list[Any]:
    """Numbers from option strings; left as given when one is not a number (the config's validate
    names the option with a message that fits it)."""
    if inner not in (int, float):
        return values
    try:
        return [inner(v) for v in values]
    except ValueError:
        return values


def _list_origin(tp: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin is Union or str(origin) == "<class 'types.UnionType'>":
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
        origin = typing.get_origin(tp)
    return origin or list


def from_options(cls: type, options: dict[str, Any], **fixed: Any) -> Any:
    """Build ``cls`` from a command's parsed options (list settings split on commas), plus ``fixed``.

    Options that are not settings of ``cls`` are left out (a command pops its own first)."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in options or not f.metadata.get("cli"):
            continue
        value = options[f.name]
        inner, many, _ = _base_type(hints[f.name])
        if many:
            value = split_values(value) if f.metadata.get("split") else list(value or ())
            value = _convert(value, inner)
            origin = _list_origin(hints[f.name])
            value = value if origin is list else tuple(value) if origin is tuple else frozenset(value)
        values[f.name] = value
    values.update(fixed)
    return cls(**values)


def describe(cls: type, prefix: str) -> list[tuple[str, str, str]]:
    """``(key, default, help)`` for every config key of ``cls``, keys as a config file spells them."""
    rows = []
    for f in config_fields(cls):
        if "help" not in f.metadata or f.metadata.get("by_pipeline"):
            continue
        default = default_of(f)
        shown = "" if default is None else str(default).lower() if isinstance(default, bool) else str(default)
        if isinstance(default, (list, tuple, frozenset)):
            shown = "[" + ", ".join(map(str, default)) + "]"
        rows.append((f"{prefix}.{key_of(f)}" if prefix else key_of(f), shown, f.metadata["help"]))
    return rows


def to_plain(obj: Any) -> Any:
    """A JSON-able form of a config dataclass (tuples and sets as lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted(to_plain(v) for v in obj)
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj
