"""Command-line interface: one subcommand per stage of the method; the rules in workflow/rules call them.

Each subcommand lives in the module of its stage, which registers its own arguments
(``register_arguments(parser)``) and runs (``run(args)``). This dispatcher imports only the module of
the command being run, so light steps (data preparation, tables, selection) start in well under a
second, and heavy libraries (torch, transformers, peft) load only for the stages that need them.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from .errors import run_reporting_errors

# command -> (module under complementarity, one-line help). Stage commands carry the stage's name,
# the same as their module and their rule file (workflow/rules/<stage>.smk).
COMMANDS: dict[str, tuple[str, str]] = {
    "validate-config": ("config", "Validate a config file against the schema and print a summary."),
    "make-demo-data": ("demo", "Regenerate the demo data (domains and candidate shards): --design digits | text."),
    "prepare": ("prepare", "Load, normalize, de-duplicate and split every domain; check leakage."),
    "shards": ("shards", "Form the candidate shards: split (random), file (one given file), check (barrier)."),
    "base_model": ("base_model", "Build the tiny model, expand a GGUF, or record a hub/local model."),
    "finetune": ("finetune", "LoRA/QLoRA fine-tune the base model on JSONL files."),
    "scoring": ("scoring", "Mean NLL per response token of the base model, or of adapters, on validation sets."),
    "selection": ("selection", "Complementarity table (gather), selection rules (topk|coverage|threshold), random-k."),
    "merge": ("merge", "Final model without retraining: merge the selected shards' LoRA adapters (PEFT)."),
    "evaluation": ("evaluation", "Evaluate the base model (or base + adapter) on every domain's test set."),
    "cost": ("cost", "Cost per stage from Snakemake benchmark files and the trainers' metrics.json."),
    "report": ("report", "Results table, Markdown report and figures from the evaluations."),
    "export": ("export", "Write base + adapter as one plain transformers model (with the tokenizer): --merged."),
    "study": ("study", "The study: its models' training sets (data), its analyses (analyze), rules compared (rules)."),
}


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named on the command line (the first argument that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The parser; only the subcommand named in ``argv`` gets its arguments (its module is imported)."""
    parser = argparse.ArgumentParser(prog="complementarity", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _command(argv)
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            mod = importlib.import_module(f".{module}", __package__)
            mod.register_arguments(sp)
            sp.set_defaults(command_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser(argv).parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    return run_reporting_errors(lambda: args.command_run(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
