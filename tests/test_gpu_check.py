"""benchmarks/gpu_check.sh --dry-run: the one-shot GPU check runs end to end at
tiny sizes on a CPU, writes its JSON and prints its table last."""
import json
import os
import subprocess
import sys

from tests.conftest import REPO_ROOT


def test_gpu_check_dry_run_writes_json_and_prints_the_table_last(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, GPU_CHECK_DIR=str(tmp_path),
               CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(["bash", os.path.join("benchmarks", "gpu_check.sh"), "--dry-run",
                             "--budget_s=600"],
                            cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:] + result.stdout[-2000:]
    (path,) = [p for p in os.listdir(tmp_path) if p.endswith("-dry-run.json")]
    results = json.load(open(os.path.join(tmp_path, path)))
    assert results["dry_run"] and results["ok"] and not results["skipped"]
    assert set(results["train_step"]) == {"float32", "mixed_bfloat16", "float32_xla"}
    assert set(results["agreement"]) == set(results["train_step"])
    assert results["eval"]["shared_trunk"]["expressions_per_s"] > 0
    assert {"float32", "bfloat16"} <= set(results["matmul"])
    lines = result.stdout.strip().splitlines()
    assert lines[-1].startswith("| evaluation, 7 expr/image")
    assert any(line.startswith("gpu_check on ") and "DRY RUN" in line for line in lines[-12:])


def test_gpu_check_refuses_to_run_without_a_gpu_unless_dry(tmp_path):
    env = dict(os.environ, PYTHON=sys.executable, GPU_CHECK_DIR=str(tmp_path),
               CUDA_VISIBLE_DEVICES="")
    result = subprocess.run(["bash", os.path.join("benchmarks", "gpu_check.sh")], cwd=REPO_ROOT,
                            env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "no GPU" in result.stderr + result.stdout
