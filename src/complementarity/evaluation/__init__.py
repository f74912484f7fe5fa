"""Evaluation: task accuracy of a model on every domain's test set.

Modules (imported by their full name; this package re-exports nothing, so no name here hides one):

* :mod:`.run`: :func:`~.run.evaluate_model`, one model on every tested domain (the stage's entry);
* :mod:`.evaluate`: one evaluator kind on a list of examples (exact match, GSM8K, MMLU, MBPP);
* :mod:`.scorers`: scoring given predictions, without a model;
* :mod:`.generate`: greedy, batched generation;
* :mod:`.sandbox`: running MBPP programs in isolation.

Nothing here imports torch at module level; the model-facing functions import it when called.

CLI: ``complementarity evaluation`` (rule evaluate_model in workflow/rules/evaluation.smk).
"""

from __future__ import annotations


def register_arguments(parser) -> None:
    from ..arguments import json_arg, pair

    parser.add_argument("--base", required=True, help="base-model folder (from complementarity base_model)")
    parser.add_argument("--base-model", type=json_arg, required=True, help="JSON: config `base_model` section")
    parser.add_argument("--adapter", help="adapter folder; none evaluates the base model")
    parser.add_argument("--name", required=True, help="model name in the results")
    parser.add_argument("--test", type=pair, nargs="+", required=True, help="DOMAIN=FILE test sets")
    parser.add_argument("--evaluators", type=json_arg, required=True, help="JSON: domain -> evaluator")
    parser.add_argument(
        "--few-shot", type=pair, nargs="*", help="DOMAIN=FILE few-shot pools (MMLU; GSM8K in the harness layout)"
    )
    parser.add_argument(
        "--settings", type=json_arg, required=True,
        help="JSON: config `evaluation` section, the keys one evaluation depends on (EvaluationSettings.result_keys)",
    )  # fmt: skip
    parser.add_argument("--out", required=True, help="output JSON")


def run(args) -> None:
    from ..modeling import keep_unused_out
    from ..provenance import provenance, write_json

    keep_unused_out(args.base_model["quantization"])
    from .run import evaluate_model

    results = evaluate_model(
        args.base, args.adapter, dict(args.test), args.evaluators, base_cfg=args.base_model, settings=args.settings,
        few_shot=dict(args.few_shot) if args.few_shot else None,
    )  # fmt: skip
    prov = provenance(
        {"base_model": args.base_model, "evaluation": args.settings, "evaluators": args.evaluators},
        adapter=args.adapter,
    )
    write_json(args.out, {"model": args.name, "domains": results, "provenance": prov}, sort_keys=False)
