"""Command-line interface: one subcommand per workflow step. Rules in workflow/rules call these.

Heavy libraries (torch, transformers, peft) are imported inside the commands that need them, so the
light steps (data preparation, tables, selection) start in well under a second.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .errors import UserError

log = logging.getLogger("complementarity")


def _json(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc}): {text[:80]!r}") from exc


def _optional_int(text: str) -> int | None:
    return None if text in ("null", "none", "None", "") else int(text)


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name or not value:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, value


def _stem(path: str | Path) -> str:
    return Path(path).name.split(".")[0]


# --- commands -------------------------------------------------------------------------------------


def cmd_validate_config(a) -> None:
    from .config import load_config, shard_ids

    cfg = load_config(a.config, a.base_dir)
    print(f"OK: {a.config}: {len(cfg['domains'])} domains, {len(shard_ids(cfg))} shards, k={cfg['selection']['k']}")


def cmd_make_demo_data(a) -> None:
    from .demo import make_demo_data

    manifest = make_demo_data(a.out)
    log.info("wrote demo data to %s (corrupted shards: %s)", a.out, ", ".join(manifest["corrupted"]))


def cmd_prepare_data(a) -> None:
    from .prepare import prepare_domains
    from .provenance import write_json
    from .records import write_jsonl

    domains, report = prepare_domains(a.domains, a.data, a.base_dir)
    out = Path(a.out_dir)
    for name, splits in domains.items():
        for split, exs in splits.items():
            write_jsonl(out / name / f"{split}.jsonl", exs)
    write_json(out / "report.json", report)
    for name, rep in report["domains"].items():
        log.info("%s: %d train, %d validation, %d test", name, rep["train"], rep["validation"], rep["test"])


def cmd_make_shards(a) -> None:
    from .prepare import random_shards
    from .records import read_prepared, write_jsonl

    pool = [ex for f in a.train for ex in read_prepared(f)]
    ids = [_stem(p) for p in a.out]
    shards = random_shards(pool, len(ids), a.seed, ids)
    for path, sid in zip(a.out, ids, strict=True):
        write_jsonl(path, shards[sid])
    log.info(
        "pooled %d records into %d shards of %d-%d",
        len(pool),
        len(ids),
        min(map(len, shards.values())),
        max(map(len, shards.values())),
    )


def cmd_make_shard(a) -> None:
    from .errors import DataError
    from .prepare import drop_duplicates, normalize, remove_leakage
    from .provenance import write_json
    from .records import read_prepared, write_jsonl
    from .sources import load_source

    exs, dups = drop_duplicates(normalize(load_source(a.input)))
    held_out: dict[str, set[str]] = {"validation": set(), "test": set()}
    for f in a.held_out:
        split = "test" if _stem(f) == "test" else "validation"
        held_out[split].update(ex.prompt for ex in read_prepared(f))
    exs, leaked = remove_leakage(exs, held_out, policy=a.leakage, where=f"shard {a.shard!r} ({a.input})")
    if not exs:
        raise DataError(f"shard {a.shard!r} ({a.input}) has no records left; remove it from sharding.files or fix it")
    write_jsonl(a.out, exs)
    write_json(
        Path(a.out).with_suffix(".report.json"),
        {"records": len(exs), "duplicates_dropped": dups, "leaked_dropped": leaked},
    )
    log.info("shard %s: %d records (%d duplicates, %d leaked dropped)", a.shard, len(exs), dups, leaked)


def cmd_check_shards(a) -> None:
    from collections import Counter

    from .errors import DataError
    from .records import read_prepared

    rows, empty = [], []
    for path in a.shards:
        exs = read_prepared(path)
        if not exs:
            empty.append(path)
        domains = Counter(ex.domain or "unknown" for ex in exs)
        rows.append((_stem(path), len(exs), ", ".join(f"{d}={n}" for d, n in sorted(domains.items()))))
    if empty:
        raise DataError(f"empty shard(s): {', '.join(empty)}; remove them from sharding.files or add records")
    out = Path(a.out)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("shard\trecords\tdomains\n" + "".join(f"{s}\t{n}\t{d}\n" for s, n, d in rows))
    tmp.replace(out)
    log.info("%d shards checked, %d records in all", len(rows), sum(n for _, n, _ in rows))


def cmd_build_base_model(a) -> None:
    import shutil

    from .gguf_source import is_gguf
    from .modeling import write_manifest
    from .provenance import provenance, write_json
    from .records import read_prepared

    out = Path(a.out)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if a.base_model["source"] == "tiny":
        from .tiny import build_tiny

        examples = [ex for f in a.train for ex in read_prepared(f)]
        stats = build_tiny(tmp, examples, a.base_model["tiny"], max_seq_len=a.max_seq_len)
        write_manifest(tmp, a.base_model, ".")
        write_json(tmp / "metrics.json", stats)
    elif is_gguf(a.base_model):  # expanded once into a plain model folder; jobs load that
        from .gguf_source import build_from_gguf

        write_json(tmp / "metrics.json", build_from_gguf(tmp, a.base_model))
        write_manifest(tmp, a.base_model, ".")
    else:
        write_manifest(tmp, a.base_model, a.base_model["source"])
    write_json(tmp / "provenance.json", provenance({"base_model": a.base_model}))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def cmd_score(a) -> None:
    from .provenance import provenance, write_json
    from .records import read_prepared
    from .scoring import score

    validation = {name: read_prepared(path) for name, path in a.validation}
    adapters = dict(a.adapter) if a.adapter else None
    scores = score(
        a.base, validation, adapters=adapters, base_cfg=a.base_model, max_seq_len=a.max_seq_len, batch_size=a.batch_size
    )
    # Domains keep the config's order (the table's columns follow it).
    write_json(a.out, {"scores": scores, "provenance": provenance({"base_model": a.base_model})}, sort_keys=False)


def cmd_finetune(a) -> None:
    from .records import read_prepared
    from .train import finetune

    files = list(a.train)
    if a.selection:
        chosen = json.loads(Path(a.selection).read_text())["selected"]
        by_id = {_stem(f): f for f in files}
        missing = [s for s in chosen if s not in by_id]
        if missing:
            raise UserError(f"{a.selection}: selected shard(s) {missing} are not among --train files {sorted(by_id)}")
        files = [by_id[s] for s in chosen]
        log.info("fine-tuning on the union of %s", ", ".join(chosen))
    examples = [ex for f in files for ex in read_prepared(f)]
    finetune(
        examples, a.base, a.out, base_cfg=a.base_model, ft=a.finetune, name=a.name,
        checkpoint_dir=a.checkpoint_dir, batch_divisor=a.batch_divisor,
    )  # fmt: skip


def cmd_gather(a) -> None:
    from .tables import complementarity_table, loss_table, read_scores, write_tsv

    base = read_scores(a.base_scores)["base"]
    shards: dict[str, dict] = {}
    for f in a.shard_scores:
        shards.update(read_scores(f))
    write_tsv(complementarity_table(base, shards, metric=a.metric, weights=a.weights), a.out)
    write_tsv(loss_table(base, shards), a.losses)


def cmd_select(a) -> None:
    from .tables import select

    sel = select(a.table, k=a.k, metric=a.metric, out=a.out)
    log.info("selected %s (k=%d, metric %s)", ", ".join(sel["selected"]), a.k, a.metric)


def cmd_random_selection(a) -> None:
    from .metric import random_k
    from .provenance import write_json

    chosen = random_k(a.shards, a.k, a.seed)
    write_json(a.out, {"k": a.k, "metric": "random", "seed": a.seed, "selected": chosen})
    log.info("random k=%d (seed %d): %s", a.k, a.seed, ", ".join(chosen))


def cmd_evaluate(a) -> None:
    from .evaluation.run import evaluate_model
    from .provenance import provenance, write_json

    results = evaluate_model(
        a.base, a.adapter, dict(a.test), a.evaluators, base_cfg=a.base_model, settings=a.settings,
        few_shot=dict(a.few_shot) if a.few_shot else None,
    )  # fmt: skip
    prov = provenance(
        {"base_model": a.base_model, "evaluation": a.settings, "evaluators": a.evaluators}, adapter=a.adapter
    )
    write_json(a.out, {"model": a.name, "domains": results, "provenance": prov}, sort_keys=False)


def cmd_report(a) -> None:
    import pandas as pd

    from .report import comparisons, evaluation_table, figures, load_evaluations, markdown_report
    from .tables import write_tsv

    evals = load_evaluations(a.evaluations)
    train_records = {}
    for pair in a.adapter_metrics or []:
        name, path = pair
        train_records[name] = json.loads(Path(path).read_text())["examples"]
    total = int(pd.read_csv(a.shards_table, sep="\t")["records"].sum())
    table = evaluation_table(evals, train_records, total, a.confidence)
    write_tsv(table, a.table)
    complementarity = pd.read_csv(a.complementarity, sep="\t", dtype={"shard": str})
    selection = json.loads(Path(a.selection).read_text())
    comps = comparisons(evals, confidence=a.confidence, resamples=a.resamples)
    figures(table, complementarity, selection, a.figures, confidence=a.confidence)
    text = markdown_report(
        table, comps, complementarity, selection, confidence=a.confidence, tiny=a.tiny, untested=a.untested or []
    )
    tmp = Path(a.report).with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(a.report)


def cmd_study_data(a) -> None:
    from .study import write_study_data

    write_study_data(dict(a.train), a.models, a.out_dir, examples=a.examples, seed=a.seed)


def cmd_study(a) -> None:
    from .study import run_study

    seed_scores: dict[int, list[str]] = {}
    for seed, path in a.seed_scores:
        seed_scores.setdefault(int(seed), []).append(path)
    run_study(
        base_scores=a.base_scores, study_scores=a.study_scores, seed_scores=seed_scores, evaluations=a.evaluations,
        study_manifest=a.study_manifest, metric=a.metric, weights=a.weights, k=a.k, settings=a.settings,
        confidence=a.confidence, resamples=a.resamples, tiny=a.tiny, out_dir=a.out_dir,
    )  # fmt: skip


# --- parser ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="complementarity", description=__doc__.splitlines()[0])
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    def add(name: str, fn, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.set_defaults(fn=fn)
        return sp

    sp = add("validate-config", cmd_validate_config, "Validate a config file against the schema and print a summary.")
    sp.add_argument("config", help="YAML config file")
    sp.add_argument("--base-dir", default=".", help="folder relative paths in the config resolve against")

    sp = add("make-demo-data", cmd_make_demo_data, "Regenerate the embedded demo data (domains and candidate shards).")
    sp.add_argument("--out", default="config/demo", help="output folder")

    sp = add("prepare-data", cmd_prepare_data, "Load, normalize, de-duplicate and split every domain; check leakage.")
    sp.add_argument("--domains", type=_json, required=True, help="JSON: config `domains` section")
    sp.add_argument("--data", type=_json, required=True, help="JSON: config `data` section")
    sp.add_argument("--base-dir", default=".", help="folder relative data paths resolve against")
    sp.add_argument("--out-dir", required=True, help="writes OUT_DIR/<domain>/{train,validation,test}.jsonl")

    sp = add("make-shards", cmd_make_shards, "Pool the domains' training data and split it into N random shards.")
    sp.add_argument("--train", nargs="+", required=True, help="prepared training JSONL files")
    sp.add_argument("--seed", type=int, required=True, help="shuffle seed")
    sp.add_argument("--out", nargs="+", required=True, help="one output JSONL per shard (shard id = file stem)")

    sp = add("make-shard", cmd_make_shard, "Normalize one candidate shard file and check it for leakage.")
    sp.add_argument("--input", required=True, help="candidate shard JSONL")
    sp.add_argument("--shard", required=True, help="shard id")
    sp.add_argument("--held-out", nargs="*", default=[], help="prepared validation/test JSONL files")
    sp.add_argument("--leakage", choices=["error", "drop"], default="error", help="leakage policy")
    sp.add_argument("--out", required=True, help="output JSONL")

    sp = add("check-shards", cmd_check_shards, "Check that every shard is non-empty; write a table of shard sizes.")
    sp.add_argument("--shards", nargs="+", required=True, help="shard JSONL files")
    sp.add_argument("--out", required=True, help="output TSV")

    sp = add(
        "build-base-model", cmd_build_base_model, "Build the tiny model, expand a GGUF, or record a hub/local model."
    )
    sp.add_argument("--base-model", type=_json, required=True, help="JSON: config `base_model` section")
    sp.add_argument("--train", nargs="*", default=[], help="pre-training text for the tiny model (prepared JSONL)")
    sp.add_argument("--max-seq-len", type=int, default=256, help="longest pre-training sequence (tokens)")
    sp.add_argument("--out", required=True, help="output folder")

    sp = add("score", cmd_score, "Mean NLL per response token of the base model, or of adapters, on validation sets.")
    sp.add_argument("--base", required=True, help="base-model folder (from build-base-model)")
    sp.add_argument("--base-model", type=_json, required=True, help="JSON: config `base_model` section")
    sp.add_argument("--validation", type=_pair, nargs="+", required=True, help="DOMAIN=FILE, one per domain")
    sp.add_argument("--adapter", type=_pair, nargs="*", help="NAME=ADAPTER_DIR; none scores the base model")
    sp.add_argument("--max-seq-len", type=int, required=True, help="tokens")
    sp.add_argument("--batch-size", type=int, default=16, help="sequences per batch")
    sp.add_argument("--out", required=True, help="output JSON")

    sp = add("finetune", cmd_finetune, "LoRA/QLoRA fine-tune the base model on JSONL files.")
    sp.add_argument("--base", required=True, help="base-model folder (from build-base-model)")
    sp.add_argument("--base-model", type=_json, required=True, help="JSON: config `base_model` section")
    sp.add_argument("--finetune", type=_json, required=True, help="JSON: config `finetune` section")
    sp.add_argument("--train", nargs="+", required=True, help="prepared JSONL files")
    sp.add_argument("--selection", help="selection.json: train on the union of its selected shards only")
    sp.add_argument("--name", default="adapter", help="name used in logs and metrics")
    sp.add_argument("--checkpoint-dir", help="resumable checkpoints go here (outside --out); resumed from if present")
    sp.add_argument(
        "--batch-divisor", type=int, default=1,
        help="divide the micro-batch by this (OOM retries); the effective batch is kept",
    )  # fmt: skip
    sp.add_argument("--out", required=True, help="output adapter folder")

    sp = add("gather", cmd_gather, "Build the Complementarity table from base and shard scores.")
    sp.add_argument("--base-scores", required=True, help="scores JSON of the base model")
    sp.add_argument("--shard-scores", nargs="+", required=True, help="scores JSON of each shard model")
    sp.add_argument("--metric", required=True, help="relative | absolute")
    sp.add_argument("--weights", type=_json, default={}, help="JSON: domain weights (default equal)")
    sp.add_argument("--out", required=True, help="complementarity.tsv")
    sp.add_argument("--losses", required=True, help="raw loss table TSV")

    sp = add("select", cmd_select, "Keep the k best shards by mean Complementarity.")
    sp.add_argument("--table", required=True, help="complementarity.tsv")
    sp.add_argument("--k", type=int, required=True, help="number of shards to keep")
    sp.add_argument("--metric", required=True, help="metric the table was computed with (recorded)")
    sp.add_argument("--out", required=True, help="selection.json")

    sp = add("random-selection", cmd_random_selection, "Baseline: choose k shards at random (seeded).")
    sp.add_argument("--shards", nargs="+", required=True, help="all shard ids")
    sp.add_argument("--k", type=int, required=True, help="shards to choose")
    sp.add_argument("--seed", type=int, required=True, help="random seed")
    sp.add_argument("--out", required=True, help="selection JSON")

    sp = add("evaluate", cmd_evaluate, "Evaluate the base model (or base + adapter) on every domain's test set.")
    sp.add_argument("--base", required=True, help="base-model folder (from build-base-model)")
    sp.add_argument("--base-model", type=_json, required=True, help="JSON: config `base_model` section")
    sp.add_argument("--adapter", help="adapter folder; none evaluates the base model")
    sp.add_argument("--name", required=True, help="model name in the results")
    sp.add_argument("--test", type=_pair, nargs="+", required=True, help="DOMAIN=FILE test sets")
    sp.add_argument("--evaluators", type=_json, required=True, help="JSON: domain -> evaluator")
    sp.add_argument("--few-shot", type=_pair, nargs="*", help="DOMAIN=FILE few-shot pools (multiple choice)")
    sp.add_argument("--settings", type=_json, required=True, help="JSON: config `evaluation` section")
    sp.add_argument("--out", required=True, help="output JSON")

    sp = add("report", cmd_report, "Results table, Markdown report and figures from the evaluations.")
    sp.add_argument("--evaluations", nargs="+", required=True, help="evaluation JSON files (model = file stem)")
    sp.add_argument("--adapter-metrics", type=_pair, nargs="*", help="MODEL=metrics.json (training records used)")
    sp.add_argument("--shards-table", required=True, help="checked.tsv (records per shard)")
    sp.add_argument("--complementarity", required=True, help="complementarity.tsv")
    sp.add_argument("--selection", required=True, help="selection.json")
    sp.add_argument("--confidence", type=float, default=0.95, help="interval level")
    sp.add_argument("--resamples", type=int, default=2000, help="paired bootstrap resamples")
    sp.add_argument("--tiny", action="store_true", help="say in the report that this is a tiny-model smoke run")
    sp.add_argument("--untested", nargs="*", help="domains without test data")
    sp.add_argument("--table", required=True, help="output evaluation.tsv")
    sp.add_argument("--report", required=True, help="output report.md")
    sp.add_argument("--figures", required=True, help="output folder for the figures")

    sp = add("study-data", cmd_study_data, "Training sets of the study's single- and pair-domain models (equal sizes).")
    sp.add_argument("--train", type=_pair, nargs="+", required=True, help="DOMAIN=FILE prepared training sets")
    sp.add_argument("--models", type=_json, required=True, help="JSON: model id -> the domains it trains on")
    sp.add_argument(
        "--examples", type=_optional_int, default=None, help="examples per model; null = the smallest domain's size"
    )
    sp.add_argument("--seed", type=int, default=0, help="sampling seed")
    sp.add_argument("--out-dir", required=True, help="writes OUT_DIR/<model>.jsonl and manifest.json")

    sp = add("study", cmd_study, "The study's analyses: correlation, predictor comparison, seed variance.")
    sp.add_argument("--base-scores", required=True, help="scores JSON of the base model")
    sp.add_argument("--study-scores", nargs="+", required=True, help="scores JSON of the study models")
    sp.add_argument("--seed-scores", type=_pair, nargs="+", required=True, help="SEED=FILE shard scores per seed")
    sp.add_argument("--evaluations", nargs="+", required=True, help="evaluation JSON files (model = file stem)")
    sp.add_argument("--study-manifest", required=True, help="manifest.json from study-data")
    sp.add_argument("--metric", required=True, help="relative | absolute")
    sp.add_argument("--weights", type=_json, default={}, help="JSON: domain weights of the selection")
    sp.add_argument("--k", type=int, required=True, help="shards selected (for the seed analysis)")
    sp.add_argument("--settings", type=_json, required=True, help="JSON: config `study` section")
    sp.add_argument("--confidence", type=float, default=0.95, help="interval level")
    sp.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    sp.add_argument("--tiny", action="store_true", help="say in the report that this is a tiny-model smoke run")
    sp.add_argument("--out-dir", required=True, help="writes tables, report.md and figures/ here")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        args.fn(args)
    except UserError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
