"""Settings declared once: each stage's dataclass field carries its default, help text, choices and
whether changing it changes what the stage produces. Everything else is derived from the dataclass:

- :func:`click_options` — the stage command's options (``--max-words``, ``--no-rule``, ...);
- :func:`hashed` — the settings that enter the stage hash of ``sftdata run`` (``hashed=False`` ones,
  like concurrency or timeouts, can change without re-running the stage);
- :func:`resumable` — the settings that may change between a run and its resume;
- :func:`describe` — the listing behind ``sftdata run --list-keys``.

Declare a field with :func:`setting`::

    @dataclass
    class FilterConfig:
        rouge_threshold: float = setting(0.7, help="Reject an instruction whose ROUGE-L F ... above this.")
        no_rule: list[str] = setting(list, help="Switch a rule off.", choices=RULES, metavar="NAME")
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable
from typing import Any, Union

import click

_MISSING = dataclasses.MISSING


def setting(default: Any = _MISSING, *, help: str, hashed: bool = True, resumable: bool | None = None,
            choices: Iterable[str] | None = None, cli: bool = True, option: str | None = None,
            metavar: str | None = None, flag: str | None = None) -> Any:
    """A dataclass field with its documentation.

    ``default``: a value, or a callable (``list``, ``lambda: [...]``) for a mutable default.
    ``hashed``: changing it changes the stage's output (so ``sftdata run`` re-runs the stage).
    ``resumable``: it may change between a run and its resume (default: ``not hashed``).
    ``cli``: exposed as a command-line option (False for values the pipeline sets).
    ``option``: the option's name when not ``--<field-name>``; ``flag``: for a bool, the pair
    (``"--instance-rules/--no-instance-rules"``) when the default is not False.
    """
    metadata = {"help": help, "hashed": hashed, "resumable": (not hashed) if resumable is None else resumable,
                "choices": tuple(choices) if choices is not None else None, "cli": cli, "option": option,
                "metavar": metavar, "flag": flag}
    if default is not _MISSING and callable(default):
        return dataclasses.field(default_factory=default, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def fields(cls: type) -> list[dataclasses.Field]:
    """The fields of ``cls`` declared with :func:`setting`."""
    return [f for f in dataclasses.fields(cls) if "help" in f.metadata]


def default_of(f: dataclasses.Field) -> Any:
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return None


def hashed(config: Any) -> dict[str, Any]:
    """The settings of ``config`` that change what its stage produces (plain JSON values)."""
    from .config import to_plain

    plain = to_plain(config)
    skip = {f.name for f in dataclasses.fields(config) if f.metadata.get("hashed") is False}
    return {k: v for k, v in plain.items() if k not in skip}


def resumable(cls: type) -> set[str]:
    """Names of the settings that may change between a run and its resume."""
    return {f.name for f in dataclasses.fields(cls) if f.metadata.get("resumable")}


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
        return inner, True, optional
    return tp, False, optional


def click_options(cls: type, *, skip: Iterable[str] = ()) -> Callable[[Callable], Callable]:
    """A decorator adding one click option per CLI setting of ``cls``, defaults and help from the fields.

    A list setting is repeatable and also takes comma-separated values (:func:`split_values` joins them).
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


def _option(f: dataclasses.Field, annotation: Any) -> Callable:
    tp, many, optional = _base_type(annotation)
    meta = f.metadata
    default = default_of(f)
    help_text = meta["help"]
    choices = meta.get("choices")
    kwargs: dict[str, Any] = {"help": help_text, "show_default": default not in (None, [], (), frozenset())}
    if meta.get("metavar"):
        kwargs["metavar"] = meta["metavar"]
    if tp is bool and not many:
        decl = meta.get("flag") or option_name(f)
        if "/" not in decl and default not in (False, None):
            decl = f"{decl}/--no-{f.name.replace('_', '-')}"
        return click.option(decl, f.name, is_flag=True, default=bool(default), **kwargs)
    if many:
        kwargs.update(multiple=True, show_default=False)
        if choices and "metavar" not in kwargs:
            kwargs["help"] = f"{help_text} One of: {', '.join(choices)}. Repeatable or comma-separated."
        elif "Repeatable" not in help_text:
            kwargs["help"] = f"{help_text} Repeatable or comma-separated."
        return click.option(option_name(f), f.name, type=_click_type(tp, None), **kwargs)
    kwargs["type"] = _click_type(tp, choices)
    kwargs["default"] = default
    return click.option(option_name(f), f.name, **kwargs)


def _click_type(tp: Any, choices: tuple[str, ...] | None) -> Any:
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


def from_options(cls: type, options: dict[str, Any], **fixed: Any) -> Any:
    """Build ``cls`` from a command's parsed options (list settings split on commas), plus ``fixed``."""
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in options:
            continue
        value = options[f.name]
        if _base_type(hints[f.name])[1]:
            value = split_values(value)
            origin = typing.get_origin(hints[f.name]) or list
            value = value if origin is list else tuple(value) if origin is tuple else frozenset(value)
        values[f.name] = value
    values.update(fixed)
    return cls(**values)


def describe(cls: type, prefix: str) -> list[tuple[str, str, str]]:
    """``(key, default, help)`` for every setting of ``cls``, keys as a config file spells them."""
    rows = []
    for f in fields(cls):
        default = default_of(f)
        rows.append((f"{prefix}.{f.name}" if prefix else f.name, "" if default is None else repr(default),
                     f.metadata["help"]))
    return rows
