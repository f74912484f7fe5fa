"""bench/gpu.py, the GPU benchmark, runs on CPU at its small shape and writes every field a GPU run reports.

On CPU the 4-bit path is skipped (the output says so); the numbers are meaningless, the script is what
is tested, so that a session with a GPU can run it at full shape without first debugging it.
"""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import REPO, env_with_bin


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
