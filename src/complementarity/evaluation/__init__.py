"""Evaluation: task accuracy of a model on every domain's test set.

Modules (imported by their full name; this package re-exports nothing, so no name here hides one):

* :mod:`.run`: :func:`~.run.evaluate_model`, one model on every tested domain (the stage's entry);
* :mod:`.evaluate`: one evaluator kind on a list of examples (exact match, GSM8K, MMLU, MBPP);
* :mod:`.scorers`: scoring given predictions, without a model;
* :mod:`.generate`: greedy, batched generation;
* :mod:`.sandbox`: running MBPP programs in isolation.

Nothing here imports torch at module level; the model-facing functions import it when called.

CLI: ``complementarity evaluation``: one model (rule evaluate_model in workflow/rules/evaluation.smk),
or several in one process with ``--models`` (rule evaluate_group).
"""

from __future__ import annotations


def register_arguments(parser) -> None:
    from ..arguments import json_arg, pair

    parser.add_argument("--base", required=True, help="base-model folder (from complementarity base_model)")
    parser.add_argument("--base-model", type=json_arg, required=True, help="JSON: config `base_model` section")
    parser.add_argument("--adapter", help="adapter folder; none evaluates the base model")
    parser.add_argument("--name", help="model name in the results (one model: with --out)")
    parser.add_argument(
        "--models", type=pair, nargs="+",
        help="NAME=ADAPTER_DIR of several models, evaluated in turn in this one process (with --out-dir)",
    )  # fmt: skip
    parser.add_argument("--test", type=pair, nargs="+", required=True, help="DOMAIN=FILE test sets")
    parser.add_argument("--evaluators", type=json_arg, required=True, help="JSON: domain -> evaluator")
    parser.add_argument(
        "--few-shot", type=pair, nargs="*", help="DOMAIN=FILE few-shot pools (MMLU; GSM8K in the harness layout)"
    )
    parser.add_argument(
        "--settings", type=json_arg, required=True,
        help="JSON: config `evaluation` section, the keys one evaluation depends on (EvaluationSettings.result_keys)",
    )  # fmt: skip
    parser.add_argument("--out", help="output JSON of the one model (--name)")
    parser.add_argument("--out-dir", help="output folder of --models: one NAME.json each, as --out writes it")


def run(args) -> None:
    from ..atomic import atomic_output
    from ..errors import UserError
    from ..modeling import keep_unused_out
    from ..provenance import provenance, write_json
    from .run import evaluate_model

    one = bool(args.name and args.out) and not (args.models or args.out_dir)
    several = bool(args.models and args.out_dir) and not (args.name or args.out or args.adapter)
    if not (one or several):
        raise UserError(
            "evaluation: give either --name and --out (one model, with --adapter unless it is the base) or "
            "--models NAME=ADAPTER_DIR ... and --out-dir (several models), not both"
        )
    keep_unused_out(args.base_model["quantization"])

    def record(name: str, adapter: str | None) -> dict:
        results = evaluate_model(
            args.base, adapter, dict(args.test), args.evaluators, base_cfg=args.base_model, settings=args.settings,
            few_shot=dict(args.few_shot) if args.few_shot else None,
        )  # fmt: skip
        prov = provenance(
            {"base_model": args.base_model, "evaluation": args.settings, "evaluators": args.evaluators},
            adapter=adapter,
        )
        return {"model": name, "domains": results, "provenance": prov}

    if args.out:
        write_json(args.out, record(args.name, args.adapter), sort_keys=False)
        return
    # One model after another, each as its own job would evaluate it (evaluate_model loads the base
    # afresh: merging an adapter changes the base weights in place). The folder appears whole or not at all.
    with atomic_output(args.out_dir, directory=True) as tmp:
        for name, adapter in args.models:
            write_json(tmp / f"{name}.json", record(name, adapter), sort_keys=False)
