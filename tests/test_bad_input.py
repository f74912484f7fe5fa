"""Broken inputs fed to the real workflow: each fails early with a message naming the problem and the
fix, before any training starts, and leaves no partial outputs behind."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from conftest import REPO, copy_workflow, job_counts, run_snakemake

pytestmark = pytest.mark.workflow

DEMO = REPO / "config" / "demo"


def small_config() -> dict:
    """Two domains and three candidate shards, small enough that nothing takes long."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["domains"] = {
        d: {"train": f"data/{d}_train.jsonl", "test": f"data/{d}_test.jsonl"} for d in ("arithmetic", "sort")
    }
    cfg["sharding"] = {"strategy": "files", "files": [f"data/shards/s{i}.jsonl" for i in (1, 2, 3)]}
    cfg["base_model"]["tiny"].update(hidden_size=64, intermediate_size=128, num_heads=2, pretrain_steps=2)
    cfg["finetune"]["max_steps"] = 2
    return cfg


def head(src: Path, n: int) -> str:
    return "".join(src.read_text().splitlines(keepends=True)[:n])


def small_workdir(dest: Path) -> Path:
    """A scratch copy of the workflow with the small config and its data."""
    wd = copy_workflow(dest)
    data = wd / "data"
    (data / "shards").mkdir(parents=True)
    for d in ("arithmetic", "sort"):
        (data / f"{d}_train.jsonl").write_text(head(DEMO / "domains" / d / "train.jsonl", 40))
        (data / f"{d}_test.jsonl").write_text(head(DEMO / "domains" / d / "test.jsonl", 20))
    for i, cand in zip((1, 2, 3), ("cand01", "cand02", "cand04"), strict=True):
        (data / "shards" / f"s{i}.jsonl").write_text(head(DEMO / "shards" / f"{cand}.jsonl", 30))
    (wd / "config" / "small.yaml").write_text(yaml.safe_dump(small_config(), sort_keys=False))
    return wd


@pytest.fixture
def workdir(tmp_path) -> Path:
    return small_workdir(tmp_path / "wf")


def edit_config(fn: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(wd: Path) -> None:
        path = wd / "config" / "small.yaml"
        cfg = yaml.safe_load(path.read_text())
        fn(cfg)
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))

    return apply


def write(rel: str, text: str | bytes, append: bool = False) -> Callable[[Path], None]:
    def apply(wd: Path) -> None:
        path = wd / rel
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text((path.read_text() if append else "") + text)

    return apply


def shard_with_test_prompt(wd: Path) -> None:
    leaked = json.loads((wd / "data" / "sort_test.jsonl").read_text().splitlines()[3])
    with (wd / "data" / "shards" / "s2.jsonl").open("a") as f:
        f.write(json.dumps({"prompt": leaked["prompt"], "response": leaked["response"], "id": "leak"}) + "\n")


def duplicate_ids(wd: Path) -> None:
    (wd / "data" / "other").mkdir()
    (wd / "data" / "other" / "s1.jsonl").write_text((wd / "data" / "shards" / "s2.jsonl").read_text())
    edit_config(lambda c: c["sharding"]["files"].append("data/other/s1.jsonl"))(wd)


def shard_is_a_directory(wd: Path) -> None:
    (wd / "data" / "shards" / "s3.jsonl").unlink()
    (wd / "data" / "shards" / "s3.jsonl").mkdir()


def shard_is_a_symlink_loop(wd: Path) -> None:
    (wd / "data" / "shards" / "s3.jsonl").unlink()
    (wd / "data" / "shards" / "s3.jsonl").symlink_to("s3.jsonl")


def model_folder_without_tokenizer(wd: Path) -> None:
    (wd / "models" / "m").mkdir(parents=True)
    (wd / "models" / "m" / "config.json").write_text("{}")
    (wd / "models" / "m" / "model.safetensors").write_bytes(b"")
    edit_config(lambda c: c["base_model"].update(source="./models/m"))(wd)


CASES = {
    "malformed JSONL": (write("data/arithmetic_train.jsonl", '{"prompt": "1 + 1 =", "resp\n', append=True), ["arithmetic_train.jsonl", "line 41"]),
    "record missing response": (write("data/shards/s2.jsonl", '{"prompt": "2 + 2 ="}\n', append=True), ["s2.jsonl", "line 31", "response"]),
    "empty prompt": (write("data/sort_test.jsonl", '{"prompt": "  ", "response": "1"}\n', append=True), ["sort_test.jsonl", "line 21", "prompt"]),
    "non-UTF-8 file": (write("data/shards/s3.jsonl", b'{"prompt": "caf\xe9", "response": "x"}\n'), ["s3.jsonl", "UTF-8"]),
    "empty domain": (write("data/sort_train.jsonl", ""), ["sort_train.jsonl", "no records"]),
    "empty shard": (write("data/shards/s1.jsonl", "\n"), ["s1.jsonl", "no records"]),
    "k > N": (edit_config(lambda c: c["selection"].update(k=4)), ["selection.k", "k=4", "N=3"]),
    "k < 1": (edit_config(lambda c: c["selection"].update(k=0)), ["selection.k", "minimum of 1"]),
    "N > records": (
        edit_config(lambda c: c.update(sharding={"strategy": "random", "n_shards": 500})),
        ["sharding.n_shards", "N=500", "lower n_shards"],
    ),
    "duplicate shard ids": (duplicate_ids, ["duplicate shard id 's1'", "rename one file"]),
    "unknown evaluator": (edit_config(lambda c: c["domains"]["sort"].update(evaluator="bleu")), ["domains.sort.evaluator", "'bleu'", "exact_match"]),
    "model path missing": (edit_config(lambda c: c["base_model"].update(source="./models/none")), ["base_model.source", "./models/none", "does not exist"]),
    "missing data file": (edit_config(lambda c: c["domains"]["sort"].update(test="data/nope.jsonl")), ["domains.sort.test", "data/nope.jsonl", "does not exist"]),
    "leakage": (shard_with_test_prompt, ["s2", "also in domains.sort.test", "Remove them from", "data.leakage: drop"]),
    "domain name with a dot": (
        edit_config(lambda c: c.update(domains={"ar.ith" if d == "arithmetic" else d: v for d, v in c["domains"].items()})),
        ["domains: name 'ar.ith'", "letters, digits, '_' and '-'", "'ar_ith'"],
    ),
    "shard path is a directory": (shard_is_a_directory, ["'data/shards/s3.jsonl' is a directory, not a file"]),
    "shard path is a symlink loop": (shard_is_a_symlink_loop, ["'data/shards/s3.jsonl' is a symbolic link loop"]),
    "model folder without tokenizer": (model_folder_without_tokenizer, ["'./models/m' has no tokenizer", "tokenizer.json"]),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_early_and_cleanly(workdir, case):
    mutate, fragments = CASES[case]
    mutate(workdir)
    proc = run_snakemake(workdir, "--profile", "profiles/local", "--cores", "2", "--configfile", "config/small.yaml", check=False)  # fmt: skip
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"{case}: the workflow accepted bad input"
    for fragment in fragments:
        assert fragment in out, f"{case}: {fragment!r} not in the error output:\n{out[-3000:]}"
    results = workdir / "results"
    for trained in ("base_model", "shards", "final", "complementarity.tsv", "selection.json"):
        assert not (results / trained).exists(), f"{case}: {trained} exists: training started on bad input"
    stray = [p for p in results.rglob("*") if p.name.endswith((".partial", ".tmp"))] if results.exists() else []
    assert not stray, f"{case}: partial outputs left behind: {stray}"


def test_the_small_config_itself_is_valid(workdir):
    """Without a planted problem the same set-up plans a full run (so the failures above are the problems')."""
    counts = job_counts(run_snakemake(workdir, "-n", "--configfile", "config/small.yaml").stdout)
    assert counts["finetune_shard"] == 3 and counts["check_shards"] == 1 and counts["finetune_final"] == 1
