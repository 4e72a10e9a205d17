"""Scale-out training: two MultiWorkerMirroredStrategy workers on loopback equal
one process with the same global batch, across a restart of both. (Mixed
precision under `mirrored`: tests/training/test_train_lib.py, in the two-logical-CPU
process it shares with the mirrored test.)"""
import dataclasses
import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT
from tests.records import SIZE, T, checkpoint_tensors
from tf_rmi.training import train_lib
from tf_rmi.config import RunConfig

pytest.importorskip("tf_rmi.models.segmenter", reason="tf_rmi.models.segmenter not present yet")


def _free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _train_args(records, run_dir, *extra):
    return [sys.executable, "-m", "tf_rmi.train", "--dataset=shapes",
            f"--tfrecord_dir={records}", "--model=LSTM", "--weights=resnet",
            f"--run_dir={run_dir}", "--trunk=small", "--small_trunk_width=8",
            f"--input_size={SIZE}", f"--num_words={T}", "--visual_dim=16", "--embed_dim=12",
            "--lstm_units=10", "--mlstm_units=8", "--iterations=4", "--snapshot_every=2",
            "--learning_rate=1e-3", "--seed=3", "--log_every=1", "--noprogress", *extra]


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, CUDA_VISIBLE_DEVICES="-1",
               TF_CPP_MIN_LOG_LEVEL="2")
    env.update(extra)
    return env


def _run_workers(records, run_dir, tmpdir, *extra):
    """Starts two workers (worker 0 is the chief) and waits for both; returns their results."""
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs = []
    for index in range(2):
        tf_config = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        procs.append(subprocess.Popen(
            _train_args(records, run_dir, "--strategy=multi_worker", "--batch_size=1", *extra),
            cwd=REPO_ROOT, env=_env(TF_CONFIG=tf_config, TMPDIR=tmpdir),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=300)
            results.append((proc.returncode, out, err))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    for rc, out, err in results:
        assert rc == 0, err[-3000:]
    return results


@pytest.mark.scale_out
def test_two_workers_train_resume_and_match_one_process(tfrecord_dir, tmp_path):
    run_dir, tmpdir = str(tmp_path / "mw"), tmp_path / "worker_tmp"
    tmpdir.mkdir()
    # Two workers, batch 1 each, stopped at step 2 (a checkpoint), then both restarted.
    first = _run_workers(tfrecord_dir, run_dir, str(tmpdir), "--max_steps=2")
    assert "to step 2 (from 0)" in first[0][1]
    second = _run_workers(tfrecord_dir, run_dir, str(tmpdir))
    assert all("to step 4 (from 2)" in out for _, out, _ in second)
    # The chief's directory is the run's; the other worker's temporary saves are gone.
    assert sorted(os.listdir(run_dir)) == ["checkpoints", "config.json", "logs", "vocab.txt"]
    assert os.listdir(tmpdir) == []
    state = tf.train.get_checkpoint_state(os.path.join(run_dir, "checkpoints"))
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == ["ckpt-2", "ckpt-4"]
    # TensorBoard: one event file per session, all from the chief.
    assert len(os.listdir(os.path.join(run_dir, "logs"))) == 2
    # One process, batch 2 (the same global batch), the same 4 steps.
    saved = RunConfig.load(run_dir)
    config = dataclasses.replace(saved, train=dataclasses.replace(
        saved.train, strategy="default", batch_size=2))
    single = train_lib.train(config, str(tmp_path / "single"), progress=False)
    expected = checkpoint_tensors(single["checkpoint"])
    got = checkpoint_tensors(os.path.join(run_dir, "checkpoints", "ckpt-4"))
    assert sorted(expected) == sorted(got)
    assert any("optimizer" in key for key in expected)
    for key in expected:
        np.testing.assert_allclose(got[key], expected[key], rtol=1e-5, atol=1e-6, err_msg=key)

