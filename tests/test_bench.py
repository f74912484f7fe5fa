"""The benchmark scripts still run against the package: bench/gpu.py at its small shape on CPU (every field
a GPU run reports), and bench/run.py's scale helpers (fake score files that `selection gather` reads, the
shell-command lengths parsed from a dry run).

On CPU the 4-bit path is skipped (the output says so); the numbers are meaningless, the scripts are what
is tested, so that a session with a GPU (or a quiet machine) can run them without first debugging them.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO, env_with_bin

sys.path.insert(0, str(REPO / "bench"))


def test_gpu_bench_small_shape_on_cpu(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**env_with_bin(), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench/gpu.py"), "--shape", "small", "--out", str(out), "--workdir", str(tmp_path)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["shape"] == "small" and r["cuda"] is False and r["device"].startswith("cpu")
    assert any("4-bit quantization skipped" in n for n in r["notes"])
    assert r["matmul_peak"]["tflops"] > 0
    for key in ("qlora", "bf16"):
        sec = r[key]
        assert sec["quantization"] == "none" and sec["dtype"] == "float32"
        for who in ("ours", "hf"):
            assert sec[who]["tokens_per_s"] > 0 and sec[who]["timed_steps"] == 2
            assert sec[who]["peak_allocated_gib"] is None  # no GPU memory on CPU
            assert 0 < sec[who]["mfu"] < 1
        assert sec["ratio_ours_over_hf"] == sec["ours"]["tokens_per_s"] / sec["hf"]["tokens_per_s"]
        assert sec["batch"] == 2 and sec["seq_len"] == 32
    assert r["qlora"]["gradient_checkpointing"] is True and r["bf16"]["gradient_checkpointing"] is False
    assert r["qlora"]["fits_24gb"] is None  # only a GPU can say
    assert r["qlora_model"]["layers"] == 2 and r["qlora_model"]["parameters"] > 0
    sc = r["scoring"]
    assert sc["n_adapters"] == 10 and sc["reloads_measured"] == 10 and sc["reload_extrapolated"] is False
    assert sc["once_seconds"] > 0 and sc["ratio_reload_over_once"] == sc["reload_seconds"] / sc["once_seconds"]
    # One base load with adapter weights copied in place scores exactly what a fresh load per adapter scores.
    assert sc["max_relative_nll_difference_once_vs_reload"] < 1e-5
    for line in ("ratio ours/HF", "fits 24 GB", "scoring 10 adapters", "NOTE"):
        assert line in proc.stdout


def test_selection_bench_on_fake_scores_runs_the_real_cli(tmp_path):
    import run

    r = run.bench_selection(tmp_path, n_shards=12, per_domain=5, resamples=20)
    assert r["score_files"] == 3 and r["n_shards"] == 12  # group_size 5: 5 + 5 + 2
    assert len(r["selected"]) == run.CONFIG["selection"]["k"] and all(s.startswith("shard") for s in r["selected"])
    assert r["gather_seconds"] > 0 and r["topk_seconds"] > 0 and r["bootstrap_npz_mib"] > 0


def test_longest_commands_per_rule_from_a_dry_run_listing():
    import run

    listing = (
        "rule make_shards:\n    input: a\n    jobid: 3\n\ncomplementarity shards split --out x y z\n\n"
        "localrule check_shards:\n    jobid: 4\ncomplementarity shards check --shards x\n"
        "rule finetune_shard:\ncomplementarity finetune --train a\n"
        "rule finetune_shard:\ncomplementarity finetune --train a b c d\n"
    )
    assert run.longest_commands(listing) == {
        "finetune_shard": len("complementarity finetune --train a b c d"),
        "make_shards": len("complementarity shards split --out x y z"),
        "check_shards": len("complementarity shards check --shards x"),
    }
