"""Preemption and kill safety: SIGTERM saves the current step and exits 0; after
SIGKILL (and a half-written save) rerunning resumes; with --deterministic both
end bit-identical (weights and Adam slots) to an uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT
from tests.records import SIZE, T
from tf_rmi.training import train_lib

pytest.importorskip("tf_rmi.models.segmenter", reason="tf_rmi.models.segmenter not present yet")

ITERATIONS, SNAPSHOT = 12, 4

# `python -m tf_rmi.train` with a pause after each step's learning-rate read, so
# that a signal sent once the first snapshot exists lands mid-run (the pause
# changes no number).
_SLOW_TRAIN = r"""
import sys, time
from tf_rmi.training import train_lib
read = train_lib.current_learning_rate
def slow(optimizer):
    time.sleep(0.25)
    return read(optimizer)
train_lib.current_learning_rate = slow
from tf_rmi import train
sys.argv[0] = "tf_rmi.train"
train.run()
"""

# Resumes both interrupted runs with their saved config (what rerunning the same
# command trains), trains an uninterrupted run, and compares bit for bit (the
# two resumed runs agreeing with it also makes two runs agree).
_RESUME_AND_COMPARE = r"""
import json, sys
import numpy as np
from tests.records import checkpoint_tensors
from tf_rmi.training import train_lib
from tf_rmi.config import RunConfig
term, kill, fresh = sys.argv[1:4]
report, finals = {}, {}
for name, run in (("term", term), ("kill", kill)):
    summary = train_lib.train(RunConfig.load(run), run, progress=False)
    report[name + "_resume"], finals[name] = summary["start_step"], summary["checkpoint"]
config = RunConfig.load(term)
ref = checkpoint_tensors(train_lib.train(config, fresh, progress=False)["checkpoint"])
report["tensors"] = len(ref)
for name, prefix in finals.items():
    got = checkpoint_tensors(prefix)
    report[name + "_keys_equal"] = sorted(got) == sorted(ref)
    report[name + "_unequal"] = sorted(k for k in ref if not np.array_equal(ref[k], got.get(k)))
    report[name + "_max_diff"] = max(float(np.max(np.abs(ref[k].astype(np.float64) - got[k])))
                                     for k in ref if k in got)
print(json.dumps(report))
"""


def _args(records, run_dir):
    return [f"--tfrecord_dir={records}", "--dataset=shapes", f"--run_dir={run_dir}",
            "--trunk=small", "--small_trunk_width=8", f"--input_size={SIZE}", f"--num_words={T}",
            "--visual_dim=16", "--embed_dim=12", "--lstm_units=10", "--mlstm_units=8",
            f"--iterations={ITERATIONS}", f"--snapshot_every={SNAPSHOT}", "--batch_size=2",
            "--learning_rate=1e-3", "--seed=5", "--log_every=2", "--deterministic",
            "--noprogress"]


def _env():
    return dict(os.environ, PYTHONPATH=REPO_ROOT, CUDA_VISIBLE_DEVICES="-1",
                TF_CPP_MIN_LOG_LEVEL="2")


def _wait_for_checkpoint(proc, run_dir, deadline_s=300):
    """Polls until the run lists a checkpoint (the process may not have ended)."""
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    end = time.monotonic() + deadline_s
    while tf.train.latest_checkpoint(ckpt_dir) is None:
        if proc.poll() is not None:
            raise AssertionError(f"training ended before its first snapshot: {proc.stderr.read()[-3000:]}")
        if time.monotonic() > end:
            proc.kill()
            raise AssertionError("no checkpoint written within the bound")
        time.sleep(0.05)


@pytest.mark.scale_out
def test_sigterm_and_sigkill_resume_bit_identical_to_an_uninterrupted_run(tfrecord_dir, tmp_path):
    term_dir, kill_dir = str(tmp_path / "term"), str(tmp_path / "kill")
    procs = {}
    for name, run_dir in (("term", term_dir), ("kill", kill_dir)):
        procs[name] = subprocess.Popen(
            [sys.executable, "-c", _SLOW_TRAIN, *_args(tfrecord_dir, run_dir)], cwd=REPO_ROOT,
            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_checkpoint(procs["term"], term_dir)
        procs["term"].send_signal(signal.SIGTERM)
        _wait_for_checkpoint(procs["kill"], kill_dir)
        procs["kill"].send_signal(signal.SIGKILL)
        term_out, term_err = procs["term"].communicate(timeout=300)
        procs["kill"].communicate(timeout=300)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    # SIGTERM: exit 0 with a checkpoint of the step reached, before the budget's end.
    assert procs["term"].returncode == 0, term_err[-3000:]
    assert "Stopped by SIGTERM at step" in term_out
    stopped = int(term_out.split("Stopped by SIGTERM at step ")[1].split()[0])
    assert SNAPSHOT <= stopped < ITERATIONS
    assert os.path.basename(tf.train.latest_checkpoint(os.path.join(term_dir, "checkpoints"))) \
        == f"ckpt-{stopped}"
    # SIGKILL: killed mid-run, at or after its first snapshot.
    assert procs["kill"].returncode == -signal.SIGKILL
    killed_at = int(tf.train.latest_checkpoint(os.path.join(kill_dir, "checkpoints")).rsplit("-", 1)[1])
    assert killed_at < ITERATIONS
    # What a kill during a save leaves: a _temp directory and files of a checkpoint
    # the state file does not list. Neither may be taken as the latest.
    ckpt_dir = os.path.join(kill_dir, "checkpoints")
    os.makedirs(os.path.join(ckpt_dir, f"ckpt-{killed_at + 1}_temp"))
    with open(os.path.join(ckpt_dir, f"ckpt-{killed_at + 1}.index"), "wb") as f:
        f.write(b"half-written")

    result = subprocess.run(
        [sys.executable, "-c", _RESUME_AND_COMPARE, term_dir, kill_dir, str(tmp_path / "fresh")],
        cwd=REPO_ROOT, env=_env(), capture_output=True, text=True,
        timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["term_resume"] == stopped and report["kill_resume"] == killed_at
    assert report["tensors"] > 20
    for name in ("term", "kill"):
        assert report[name + "_keys_equal"], name
        assert report[name + "_unequal"] == [], (name, report[name + "_max_diff"])
    assert not [n for n in os.listdir(ckpt_dir) if n.startswith(f"ckpt-{killed_at + 1}")]


def test_remove_unfinished_checkpoints_keeps_every_listed_checkpoint(tmp_path):
    directory = str(tmp_path)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(v=tf.Variable(1.0)), directory, 5)
    manager.save(checkpoint_number=2)
    manager.save(checkpoint_number=4)
    leftovers = [os.path.join(directory, name) for name in
                 ("ckpt-6_temp", "ckpt-6.index", "ckpt-6.data-00000-of-00001")]
    os.makedirs(leftovers[0])
    for path in leftovers[1:]:
        open(path, "wb").close()
    assert sorted(train_lib.remove_unfinished_checkpoints(directory)) == sorted(leftovers)
    assert tf.train.latest_checkpoint(directory).endswith("ckpt-4")
    assert {n.split(".")[0] for n in os.listdir(directory) if n != "checkpoint"} == {"ckpt-2", "ckpt-4"}
