"""Layout of a run directory, shared by training, evaluation, export and import.

    <run_dir>/config.json              the resolved RunConfig
    <run_dir>/vocab.txt                a copy of the vocabulary the run embeds
    <run_dir>/checkpoints/ckpt-<N>.*   tf.train.Checkpoint(model=, optimizer=, step=)
    <run_dir>/logs/                    TensorBoard event files
    <run_dir>/best/ckpt-<step>.*       with train.eval_every: the best validation step's
    <run_dir>/best.json, validation.jsonl   weights, and the scores (train_lib.Validator)

Evaluation and export read the config back instead of re-taking architecture
flags, and restore only the model (optimizer slots are left unread). The
vocabulary copy makes a run directory self-contained: it predicts and exports
from any working directory and after being copied elsewhere. Runs written
before the copy existed fall back to the vocabulary named by the config or the
preprocess manifest (`run_vocab_file`).
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

from tf_rmi.config import CONFIG_FILENAME, RunConfig

CHECKPOINT_SUBDIR = "checkpoints"
CHECKPOINT_PREFIX = "ckpt"
LOG_SUBDIR = "logs"
VOCAB_FILENAME = "vocab.txt"


def checkpoint_dir(run_dir: str) -> str:
    return os.path.join(run_dir, CHECKPOINT_SUBDIR)


def resolve_checkpoint(path: str) -> Tuple[str, str]:
    """Resolves a run directory or a checkpoint prefix to (run_dir, prefix).

    `path` may be a run directory (the latest checkpoint is used) or a
    checkpoint prefix inside `<run_dir>/checkpoints/`.
    """
    import tensorflow as tf

    if os.path.isdir(path):
        run_dir = path
        prefix = tf.train.latest_checkpoint(checkpoint_dir(run_dir))
        if prefix is None:
            raise FileNotFoundError(
                f"No checkpoint in {checkpoint_dir(run_dir)}: train first "
                f"(`make train RUN={run_dir}`) or pass a checkpoint prefix.")
        return run_dir, prefix
    if not os.path.exists(path + ".index"):
        raise FileNotFoundError(
            f"{path} is neither a run directory nor a checkpoint prefix "
            "(expected <prefix>.index beside it).")
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(path)))
    if not os.path.exists(os.path.join(run_dir, CONFIG_FILENAME)):
        raise FileNotFoundError(
            f"No {CONFIG_FILENAME} in {run_dir}: checkpoints must sit in "
            f"<run_dir>/{CHECKPOINT_SUBDIR}/ beside the run's config.")
    return run_dir, path


def restore_model(path: str, config: Optional[RunConfig] = None):
    """Builds the model from the run's config and restores its weights.

    Returns (model, run_config, checkpoint_prefix). A checkpoint that does not
    fit the model (other vocabulary size, other model kind) raises ValueError
    naming the variable and both shapes.
    """
    import tensorflow as tf

    from tf_rmi.models.segmenter import build_model

    run_dir, prefix = resolve_checkpoint(path)
    config = config or RunConfig.load(run_dir)
    model = build_model(config.model)
    ckpt = tf.train.Checkpoint(model=model)
    try:
        ckpt.restore(prefix).expect_partial().assert_existing_objects_matched()
    except (ValueError, AssertionError, tf.errors.OpError) as e:
        m = config.model
        raise ValueError(
            f"Checkpoint {prefix} does not fit the model built from "
            f"{os.path.join(run_dir, CONFIG_FILENAME)} (model={m.model}, "
            f"weights={m.weights}, trunk={m.trunk}, vocab_size={m.vocab_size}): "
            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}. Use the "
            "checkpoint with the config.json it was trained with.") from None
    return model, config, prefix


def run_vocab_file(run_dir: str, config: Optional[RunConfig] = None) -> str:
    """The vocabulary of a run: `<run_dir>/vocab.txt` (copied there by training),
    else, for older runs, the config's `data.vocab_file` or the manifest's.

    Raises FileNotFoundError saying where it looked and what to pass instead.
    """
    from tf_rmi.data import pipeline

    copy = os.path.join(run_dir, VOCAB_FILENAME)
    if os.path.isfile(copy):
        return copy
    config = config or RunConfig.load(run_dir)
    hint = (f"{run_dir} holds no {VOCAB_FILENAME} (runs trained before the vocabulary was "
            "copied into the run directory): pass --vocab_file=<the vocabulary it was trained "
            "with>, or run from the directory training ran in")
    try:
        path = pipeline.resolve_vocab_file(config.data)
    except (FileNotFoundError, ValueError) as err:
        raise FileNotFoundError(f"{hint} (the run's manifest lookup failed: "
                                f"{str(err).split(': ')[0]})") from None
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{hint} (the vocabulary recorded for it, {path}, is not "
                                f"found from {os.getcwd()})")
    return path
