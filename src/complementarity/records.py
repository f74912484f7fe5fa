"""The one record type that flows through the pipeline."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .atomic import atomic_output


@dataclass(frozen=True)
class Example:
    """A prompt and the response the model should learn to give.

    ``id`` is unique within its source; ``meta`` carries format-specific extras that evaluation needs
    (MBPP test lists, MMLU choices and gold letter, GSM8K final answer, …). ``domain`` is set once the
    example is assigned to a domain (after preparation).
    """

    prompt: str
    response: str
    id: str
    domain: str | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def to_json(self) -> str:
        d = asdict(self)
        if not d["meta"]:
            del d["meta"]
        if d["domain"] is None:
            del d["domain"]
        return json.dumps(d, ensure_ascii=False, sort_keys=True)


def write_jsonl(path: str | Path, examples: Iterable[Example]) -> int:
    """Write examples as JSONL atomically (temp file + rename); return the count."""
    n = 0
    with atomic_output(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for ex in examples:
            f.write(ex.to_json() + "\n")
            n += 1
    return n


def read_prepared(path: str | Path) -> list[Example]:
    """Read a JSONL file written by :func:`write_jsonl` (trusted, already validated)."""
    out = []
    with Path(path).open(encoding="utf-8") as f:
        for n, line in enumerate(f, start=1):
            if line.strip():
                try:
                    d = json.loads(line)
                    ex = Example(
                        prompt=d["prompt"], response=d["response"], id=str(d["id"]), domain=d.get("domain"),
                        meta=d.get("meta", {}),
                    )  # fmt: skip
                except (ValueError, KeyError, TypeError) as exc:
                    from .errors import DataError

                    raise DataError(
                        f"{path}, line {n}: not a record written by this workflow ({type(exc).__name__}: {exc}); "
                        "the file was cut short or edited outside the workflow: delete it and rerun"
                    ) from None
                out.append(ex)
    return out
