"""Load candidate and evaluation data into :class:`~complementarity.records.Example` lists.

A *source spec* says where the records come from and how to read them:

* a string: a local JSONL file of ``{"prompt": str, "response": str, "id"?: str | int}`` objects;
* a dict with exactly one of ``path`` (a local ``.jsonl``, ``.json`` or ``.csv`` file) or ``hub``
  (anything :func:`datasets.load_dataset` accepts: a hub dataset id such as ``openai/gsm8k``, a local
  dataset folder, or a builder name such as ``json`` together with ``data_files``), plus the optional
  keys ``format``, ``name``, ``split``, ``data_files``, ``revision`` and ``limit`` (a key set to
  ``None`` counts as absent);
* a list of such specs, concatenated in order.

Every row is turned into an :class:`Example` by the converter of its ``format`` (one of
:data:`FORMATS`). Every problem with the input raises :class:`~complementarity.errors.DataError` with
a message that names the file (or dataset), the line, row or record, the key, and the fix.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from complementarity.errors import DataError
from complementarity.records import Example
from complementarity.tasks import (
    CONVERTERS,
    MBPP_SPLITS,
    Converter,
    Origin,
    Row,
    json_type,
)

logger = logging.getLogger(__name__)

DataFiles = str | list[str] | dict[str, str | list[str]]

FORMATS = tuple(CONVERTERS)
"""The row formats :func:`load_source` understands (one converter each, in :mod:`complementarity.tasks`)."""

SPEC_KEYS = ("path", "hub", "format", "name", "split", "data_files", "revision", "limit")
"""The keys a dict source spec may have."""

HUB_ONLY_KEYS = ("name", "data_files", "revision")
"""Keys that only make sense together with ``hub``."""

LOCAL_EXTENSIONS = (".jsonl", ".json", ".csv")
"""File extensions a ``path`` spec may have."""


# --------------------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------------------


def load_source(spec: str | os.PathLike[str] | dict[str, Any] | list[Any], base_dir: str | Path = ".") -> list[Example]:
    """Load the examples a source spec describes.

    ``spec`` is a path string (a local ``prompt_response`` JSONL file), a dict spec (see the module
    docstring) or a list of specs, concatenated in order. Relative paths resolve against ``base_dir``.
    Ids are unique in the result: a list whose parts share an id raises :class:`DataError`.
    """
    base = Path(base_dir)
    if not isinstance(spec, list):
        return _load_one(*_normalize(spec, "source spec"), base)
    if not spec:
        raise DataError("source spec is an empty list; give at least one path or {path: ...}/{hub: ...} spec")
    # Check every part before loading any, so a typo in the last part fails fast.
    parts = [_normalize(part, f"source spec list item {i}") for i, part in enumerate(spec)]
    out: list[Example] = []
    seen: dict[str, int] = {}
    for i, (part, label) in enumerate(parts):
        examples = _load_one(part, label, base)
        for ex in examples:
            if ex.id in seen:
                raise DataError(
                    f"source spec list items {seen[ex.id]} and {i} both contain id {ex.id!r}; ids must be unique "
                    "within one source: give the records distinct ids or list these parts as separate sources"
                )
            seen[ex.id] = i
        out.extend(examples)
    return out


def _normalize(spec: object, label: str) -> tuple[dict[str, Any], str]:
    """Turn one (non-list) spec into a checked dict, and a label naming it for error messages."""
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if isinstance(spec, str):
        spec = {"path": spec}
    if not isinstance(spec, dict):
        what = "a nested list" if isinstance(spec, list) else f"{type(spec).__name__} {spec!r}"
        raise DataError(f"{label} must be a path string, a dict with 'path' or 'hub', or a list of those; got {what}")
    # A key set to null counts as not given (the config schema's defaults for these keys are null).
    spec = {key: value for key, value in spec.items() if value is not None}
    for key in ("path", "hub"):
        if isinstance(spec.get(key), str):
            label = f"{label} ({key} {spec[key]!r})"
            break
    _check_spec(spec, label)
    return spec, label


def _load_one(spec: dict[str, Any], label: str, base: Path) -> list[Example]:
    """Load one checked dict spec."""
    fmt = spec.get("format", "prompt_response")
    converter = CONVERTERS[fmt]
    if "path" in spec:
        examples = _load_local(spec, base, fmt, converter, label)
    else:
        examples = _load_hub(spec, base, converter)
    if "limit" in spec:
        examples = examples[: spec["limit"]]
    logger.info("loaded %d %s examples from %s", len(examples), fmt, label)
    return examples


def _check_spec(spec: dict[str, Any], label: str) -> None:
    """Validate the keys and value types of a dict spec."""
    allowed = ", ".join(SPEC_KEYS)
    for key in spec:
        if key not in SPEC_KEYS:
            raise DataError(f"{label}: unknown key {key!r}; allowed keys: {allowed}")
    has_path, has_hub = "path" in spec, "hub" in spec
    if has_path == has_hub:
        what = "both" if has_path else "neither of"
        raise DataError(
            f"{label} has {what} 'path' and 'hub'; give exactly one: 'path' for a local file "
            "or 'hub' for a datasets.load_dataset path"
        )
    for key in ("path", "hub", "format", "name", "split", "revision"):
        if key in spec and (not isinstance(spec[key], str) or not spec[key].strip()):
            raise DataError(f"{label}: {key!r} must be a non-empty string; got {spec[key]!r}")
    fmt = spec.get("format", "prompt_response")
    if fmt not in FORMATS:
        raise DataError(f"{label}: unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    if "limit" in spec:
        limit = spec["limit"]
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise DataError(
                f"{label}: 'limit' must be a positive integer (the number of records to keep); got {limit!r}"
            )
    if has_path:
        for key in HUB_ONLY_KEYS:
            if key in spec:
                raise DataError(
                    f"{label}: key {key!r} only applies to 'hub' specs; remove it or load {spec['path']!r} via 'hub'"
                )
        if "split" in spec and fmt != "mbpp":
            raise DataError(
                f"{label}: 'split' with a local 'path' only selects an MBPP task-id split (format mbpp); "
                "remove it, or point 'path' at the file holding the split you want"
            )
        if "split" in spec and spec["split"] not in MBPP_SPLITS:
            raise DataError(f"{label}: unknown MBPP split {spec['split']!r}; use one of: {', '.join(MBPP_SPLITS)}")
    else:
        if "split" not in spec:
            raise DataError(f"{label}: a 'hub' spec needs 'split' (e.g. 'train', 'test', 'validation')")
        if "data_files" in spec and not _valid_data_files(spec["data_files"]):
            raise DataError(
                f"{label}: 'data_files' must be a string, a list of strings, or a dict of split name to "
                f"string or list of strings; got {spec['data_files']!r}"
            )


def _valid_data_files(value: object) -> bool:
    def str_or_list(v: object) -> bool:
        return isinstance(v, str) or (isinstance(v, list) and bool(v) and all(isinstance(x, str) for x in v))

    if isinstance(value, dict):
        return bool(value) and all(isinstance(k, str) and str_or_list(v) for k, v in value.items())
    return str_or_list(value)


# --------------------------------------------------------------------------------------------------
# Local files
# --------------------------------------------------------------------------------------------------


def _load_local(spec: dict[str, Any], base: Path, fmt: str, converter: Converter, label: str) -> list[Example]:
    path = base / spec["path"]
    ext = path.suffix.lower()
    if ext not in LOCAL_EXTENSIONS:
        raise DataError(
            f"{path}: unsupported file extension {ext or '(none)'!r}; "
            f"supported: {', '.join(LOCAL_EXTENSIONS)} (or load it with a 'hub' spec)"
        )
    if ext == ".csv" and fmt != "mmlu":
        raise DataError(f"{path}: CSV files are only read for format 'mmlu' (got format {fmt!r}); use .jsonl or .json")
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise DataError(
            f"{path}: file not found ({what}); the 'path' of {label} should point to an existing file "
            f"(relative paths resolve against {base.resolve()})"
        )
    if ext == ".jsonl":
        rows = list(_read_jsonl(path))
    elif ext == ".json":
        rows = list(_read_json_array(path))
    else:
        rows = list(_read_csv(path))
    if not rows:
        raise DataError(f"{path}: no records (the file is empty or has only blank lines); add at least one record")
    origin = Origin(stem=path.stem)
    examples = _convert_all(rows, origin, converter)
    if "split" in spec:
        lo, hi = MBPP_SPLITS[spec["split"]]
        examples = [ex for ex in examples if lo <= int(ex.id) <= hi]
        if not examples:
            raise DataError(
                f"{path}: no MBPP tasks with task_id {lo}-{hi} (split {spec['split']!r}); check the file or the split"
            )
    return examples


def _read_text(path: Path) -> str:
    """Read a file as UTF-8 (a leading BOM is dropped), naming the bad byte's line if it is not."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}: line {line}: not valid UTF-8 (byte offset {exc.start}: {exc.reason}); re-save the file as UTF-8"
        ) from exc
    return text.removeprefix("\ufeff")


def _read_jsonl(path: Path) -> Iterator[Row]:
    """Strict JSONL reader: one JSON object per line; blank lines are skipped."""
    text = _read_text(path)
    index = 0
    # Split on "\n" only: str.splitlines() would also split on U+2028 etc., which JSON allows raw in strings.
    for line_no, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        where = f"{path}: line {line_no}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{where}: not valid JSON ({exc.msg} at column {exc.colno}); each line must be exactly one JSON object"
            ) from exc
        if not isinstance(obj, dict):
            raise DataError(
                f"{where}: expected a JSON object, got {json_type(obj)}; each line must be an object "
                'such as {"prompt": "...", "response": "..."}'
            )
        yield Row(data=obj, index=index, where=where, default_id=f"{path.stem}:{line_no}")
        index += 1


def _read_json_array(path: Path) -> Iterator[Row]:
    """A ``.json`` file holding one array of objects."""
    text = _read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: line {exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); "
            "a .json source must be one JSON array of objects"
        ) from exc
    if not isinstance(data, list):
        raise DataError(
            f"{path}: expected a JSON array of objects, got {json_type(data)}; "
            "wrap the records in [...] or use a .jsonl file with one object per line"
        )
    for i, obj in enumerate(data):
        where = f"{path}: record index {i}"
        if not isinstance(obj, dict):
            raise DataError(
                f"{where}: expected a JSON object, got {json_type(obj)}; every array item must be an object"
            )
        yield Row(data=obj, index=i, where=where, default_id=f"{path.stem}:{i}")


def _read_csv(path: Path) -> Iterator[Row]:
    """A header-less CSV file; each row is a list of strings. Empty rows are skipped."""
    _read_text(path)  # UTF-8 check with a line number
    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        index = 0
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise DataError(f"{path}: line {reader.line_num}: malformed CSV ({exc}); check the quoting") from exc
            if not row:
                continue
            where = f"{path}: row {index + 1} (line {start})"
            yield Row(data=row, index=index, where=where, default_id=f"{path.stem}:{index}")
            index += 1


# --------------------------------------------------------------------------------------------------
# Hub (datasets.load_dataset)
# --------------------------------------------------------------------------------------------------


def _load_hub(spec: dict[str, Any], base: Path, converter: Converter) -> list[Example]:
    import datasets  # slow to import; only needed here

    hub: str = spec["hub"]
    local = Path(hub) if Path(hub).is_absolute() else base / hub
    target = str(local) if local.exists() else hub
    name, split = spec.get("name"), spec["split"]
    kwargs: dict[str, Any] = {"split": split, "cache_dir": os.environ.get("HF_DATASETS_CACHE") or None}
    if "data_files" in spec:
        kwargs["data_files"] = _resolve_data_files(spec["data_files"], base)
    if "revision" in spec:
        kwargs["revision"] = spec["revision"]
    desc = f"{hub}" + (f" (config {name!r}, split {split!r})" if name else f" (split {split!r})")
    try:
        dataset = datasets.load_dataset(target, name, **kwargs)
    except Exception as exc:  # datasets raises many unrelated types (FileNotFound, ValueError, HTTP errors, ...)
        raise DataError(
            f"{desc}: datasets.load_dataset failed: {type(exc).__name__}: {exc}; check 'hub', 'name', 'split', "
            "'data_files' and 'revision' (offline: the dataset must be a local folder or already cached)"
        ) from exc
    origin = Origin(stem=Path(hub.rstrip("/")).name or hub)
    rows = (
        Row(data=dict(row), index=i, where=f"{desc}, row index {i}", default_id=f"{split}:{i}")
        for i, row in enumerate(dataset)
    )
    examples = _convert_all(rows, origin, converter)
    if not examples:
        raise DataError(f"{desc}: the split has no rows; check 'split' and 'data_files'")
    return examples


def _resolve_data_files(value: DataFiles, base: Path) -> DataFiles:
    """Resolve relative local paths in ``data_files`` against ``base``; leave URLs alone."""

    def one(p: str) -> str:
        return p if "://" in p or Path(p).is_absolute() else str(base / p)

    if isinstance(value, str):
        return one(value)
    if isinstance(value, list):
        return [one(p) for p in value]
    return {k: (one(v) if isinstance(v, str) else [one(p) for p in v]) for k, v in value.items()}


# --------------------------------------------------------------------------------------------------
# Converters
# --------------------------------------------------------------------------------------------------


def _convert_all(rows: Iterator[Row] | list[Row], origin: Origin, converter: Converter) -> list[Example]:
    """Convert rows and check that ids are unique within the source."""
    out: list[Example] = []
    seen: dict[str, str] = {}
    for row in rows:
        ex = converter(row, origin)
        if ex.id in seen:
            raise DataError(
                f"{row.where}: duplicate id {ex.id!r} (first used at {seen[ex.id]}); ids must be unique within a source"
            )
        seen[ex.id] = row.where
        out.append(ex)
    return out
