"""The Record (docs/architecture.md), its stable id, and JSONL reading with ``file:line`` errors.

Reading accepts every shape sftdata writes or imports, detected per line: a row of any format of
the formats registry (``core.formats``: sharegpt ``conversations``, OpenAI / TRL ``messages``,
``prompt`` + ``completion``), a Record / alpaca row (``instruction``, ``input``, ``output``), a
self-instruct seed task (``instruction`` + ``instances``: one Record per instance).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import formats
from .errors import DataError

MAX_LINE_BYTES = 8 * 1024 * 1024  # a single record larger than this is a broken file, not data


def record_id(instruction: str, input: str, output: str) -> str:
    payload = json.dumps([instruction, input, output], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


@dataclass
class Record:
    instruction: str
    input: str = ""
    output: str = ""
    lang: str | None = None
    is_classification: bool | None = None
    source: str = "import"
    parent_id: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return record_id(self.instruction, self.input, self.output)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "instruction": self.instruction, "input": self.input,
            "output": self.output, "lang": self.lang, "is_classification": self.is_classification,
            "source": self.source, "parent_id": self.parent_id, "meta": self.meta,
        }

    def to_json(self) -> str:
        return json_text(self.to_dict())


# ---------------------------------------------------------------- shape detection

def _optional_bool(obj: dict, key: str) -> bool | None:
    value = obj.get(key)
    if value is None or isinstance(value, bool):
        return value
    if value in ("yes", "Yes", "true", "True"):
        return True
    if value in ("no", "No", "false", "False"):
        return False
    raise ValueError(f"field '{key}' must be true, false or null, got {value!r}")


def records_from_obj(obj: Any) -> list[Record]:
    """Turn one parsed JSON line into Records; raises ValueError naming what is wrong."""
    if not isinstance(obj, dict):
        raise ValueError(f"expected a JSON object, got {type(obj).__name__}")
    for fmt in formats.FORMATS.values():  # the dataset formats' rows (core.formats)
        if fmt.matches is not None and fmt.read is not None and fmt.matches(obj):
            return [Record(**fields) for fields in fmt.read(obj)]
    # a Record, an alpaca row (Records' own fields) or a Self-Instruct seed task
    instruction = formats.str_field(obj, "instruction")
    if not instruction.strip():
        raise ValueError("field 'instruction' is empty")
    common = dict(
        lang=obj.get("lang") if isinstance(obj.get("lang"), str) else None,
        is_classification=_optional_bool(obj, "is_classification"),
    )
    if "instances" in obj:  # self-instruct seed task
        instances = obj["instances"]
        if not isinstance(instances, list) or not instances:
            raise ValueError("field 'instances' must be a non-empty list")
        out = []
        for inst in instances:
            if not isinstance(inst, dict):
                raise ValueError("each instance must be an object with 'input' and 'output'")
            out.append(Record(instruction=instruction, input=formats.str_field(inst, "input", ""),
                              output=formats.str_field(inst, "output"), source="seed",
                              meta={"seed_id": obj.get("id"), "name": obj.get("name")}, **common))
        return out
    meta = obj.get("meta") or {}
    if not isinstance(meta, dict):
        raise ValueError("field 'meta' must be an object")
    if isinstance(obj.get("system"), str) and obj["system"]:
        meta = {**meta, "system": obj["system"]}
    parent = obj.get("parent_id")
    return [Record(instruction=instruction, input=formats.str_field(obj, "input", ""),
                   output=formats.str_field(obj, "output", ""),
                   source=obj["source"] if isinstance(obj.get("source"), str) else "import",
                   parent_id=parent if isinstance(parent, str) else None, meta=meta, **common)]


# ---------------------------------------------------------------- reading

def iter_json_lines(path: str | os.PathLike[str]) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_number, parsed_object)`` for each non-blank line, streaming.

    Raises DataError with ``path:line`` for a BOM, invalid UTF-8, bad JSON, an overlong line,
    a JSON array file (not JSONL), or an empty file.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "no such file")
    if path.is_dir():
        raise DataError(path, None, "is a directory, expected a JSONL file")
    seen_any = False
    with open(path, "rb") as fh:
        for number, raw in enumerate(_bounded_lines(fh, path), start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raise DataError(path, 1, "file starts with a UTF-8 byte-order mark (BOM); save it as UTF-8 without BOM")
            if number == 1 and raw.startswith((b"\xff\xfe", b"\xfe\xff")):
                raise DataError(path, 1, "file is UTF-16 (it starts with a UTF-16 byte-order mark); save it as UTF-8")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise DataError(path, number, f"invalid UTF-8 at byte {exc.start}") from None
            if not text.strip():
                continue
            obj = _parse_line(text, path, number)
            if isinstance(obj, list):
                raise DataError(path, number, "a JSON array, expected one JSON object per line (JSONL)")
            seen_any = True
            yield number, obj
    if not seen_any:
        raise DataError(path, None, "file is empty: no records")


_LONE_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (write null, a number or a string)")


_DECODER = json.JSONDecoder(parse_constant=_no_constant)  # one decoder: json.loads(..., **kw) builds one per call


def _parse_line(text: str, path: Path, number: int) -> Any:
    """One JSON value, or DataError: bad syntax, NaN / Infinity (our writers could not write them back
    as JSON), nesting too deep for the parser, an integer too long to convert, or a \\uD800-style
    escape that is half a character (no UTF-8 file can hold it, so the output would fail half-written)."""
    try:
        obj = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        hint = ""
        if number == 1 and text.lstrip().startswith("["):
            hint = " (this looks like a JSON array; sftdata reads JSONL: one object per line)"
        msg = exc.msg.removesuffix(" at")  # "Unterminated string starting at" + our "at column"
        raise DataError(path, number, f"invalid JSON: {msg} at column {exc.colno}{hint}") from None
    except RecursionError:
        raise DataError(path, number, "invalid JSON: nested too deeply") from None
    except ValueError as exc:  # NaN / Infinity, or an integer beyond the conversion limit
        what = "a number longer than 4300 digits" if "integer string conversion" in str(exc) else str(exc)
        raise DataError(path, number, f"invalid JSON: {what}") from None
    if _LONE_SURROGATE.search(text):
        try:
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise DataError(path, number, "a \\u escape encodes half a character (a lone surrogate such "
                                          "as \\ud800); it cannot be written as UTF-8") from None
    return obj


def _bounded_lines(fh: Any, path: Path) -> Iterator[bytes]:
    number = 0
    while True:
        raw = fh.readline(MAX_LINE_BYTES + 1)
        if not raw:
            return
        number += 1
        if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
            raise DataError(path, number, f"line longer than {MAX_LINE_BYTES // (1024 * 1024)} MB")
        yield raw


def read_numbered_records(path: str | os.PathLike[str]) -> Iterator[tuple[int, Record]]:
    """Stream ``(line_number, Record)`` from a JSONL file in any supported shape."""
    for number, obj in iter_json_lines(path):
        try:
            found = records_from_obj(obj)
        except ValueError as exc:
            raise DataError(path, number, str(exc)) from None
        for record in found:
            yield number, record


def read_records(path: str | os.PathLike[str]) -> Iterator[Record]:
    """Stream Records from a JSONL file in any supported shape."""
    for _number, record in read_numbered_records(path):
        yield record


def read_all(paths: Iterable[str | os.PathLike[str]]) -> list[Record]:
    """Read every file fully before returning, so a bad line fails before any output is written."""
    return [rec for path in paths for rec in read_records(path)]


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so a crash never leaves half a file
    (and a failed write, e.g. a full disk, leaves no temporary file either)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict | Record]) -> int:
    """Write rows atomically (temp file + rename). Returns the number written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    count = 0
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            for row in rows:
                fh.write(dumps(row) + "\n")
                count += 1
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return count


_SURROGATE_CHAR = re.compile("[\ud800-\udfff]")


def json_text(value: Any, **options: Any) -> str:
    """JSON of ``value`` as UTF-8-writable text. A file name that is not valid UTF-8 reaches Python
    as a string holding lone surrogates (``\\udcff`` for the byte 0xff), which no UTF-8 file can hold;
    they are written as JSON escapes, which ``json.loads`` turns back into the same string, so the
    name is stored losslessly (``os.fsencode`` gives back its bytes)."""
    text = json.dumps(value, ensure_ascii=False, **options)
    if _SURROGATE_CHAR.search(text) is None:
        return text
    return _SURROGATE_CHAR.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def dumps(row: dict | Record) -> str:
    if isinstance(row, Record):
        return row.to_json()
    return json_text(row)


def rejected(record: Record, stage: str, reason: str, detail: dict | None = None) -> dict:
    """The rejected-record shape (docs/architecture.md, "The Record")."""
    return {"record": record.to_dict(), "stage": stage, "reason": reason, "detail": detail or {}}
