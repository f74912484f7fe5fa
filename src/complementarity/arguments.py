"""Argument types shared by the subcommands' parsers (``NAME=PATH`` pairs, JSON config slices)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def json_arg(text: str):
    """A JSON value (a config slice passed by a rule)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text[:80]!r}") from exc


def optional_int(text: str) -> int | None:
    """An integer, or null/none/empty for None."""
    return None if text in ("null", "none", "None", "") else int(text)


def pair(text: str) -> tuple[str, str]:
    """``NAME=PATH``."""
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, value


def stem(path: str | Path) -> str:
    """A file's id: its name up to the first dot (``results/data/shards/cand01.jsonl`` -> ``cand01``)."""
    return Path(path).name.split(".")[0]


def add_actions(parser: argparse.ArgumentParser, actions: dict) -> dict[str, argparse.ArgumentParser]:
    """Sub-actions of a stage (``complementarity shards split|file|check``): {name: (run, help)} -> parsers."""
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    parsers = {}
    for name, (fn, help_text) in actions.items():
        parsers[name] = sub.add_parser(name, help=help_text, description=help_text)
        parsers[name].set_defaults(run=fn)
    return parsers
