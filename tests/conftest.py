"""Shared test harness: paths to ../shared and tiny configurations."""
import os

import pytest

from tf_rmi.config import ModelConfig

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared")


def shared_path(*parts):
    """Path under ../shared, skipping the test when it is not beside the checkout."""
    path = os.path.join(SHARED_DIR, *parts)
    if not os.path.exists(path):
        pytest.skip(f"{path} not found: ../shared must sit beside the checkout")
    return path


def tiny_model_config(**overrides) -> ModelConfig:
    """The small-trunk model at small sizes: fast enough for every test."""
    values = dict(trunk="small", small_trunk_width=8, vocab_size=50, input_size=64,
                  num_words=6, visual_dim=16, embed_dim=12, lstm_units=10,
                  mlstm_units=8)
    values.update(overrides)
    return ModelConfig(**values)


@pytest.fixture
def tiny_config():
    return tiny_model_config()


def decisive_tiny_model(cfg: ModelConfig, seed: int = 0):
    """A seeded tiny model whose masks are decided well away from the threshold.

    A random tiny model's logits all sit near 0, where float rounding that
    differs between execution paths (eager vs graph, batch sizes) could flip a
    pixel at the 1e-9 threshold. Scaling conv2 and centring its bias on the
    median logit of a probe image gives masks that are neither empty nor full.
    """
    import keras
    import numpy as np

    from tf_rmi.models.segmenter import build_model

    keras.utils.set_random_seed(seed)
    model = build_model(cfg)
    model.conv2.kernel.assign(model.conv2.kernel * 1000.0)
    size = cfg.input_size
    probe = np.random.RandomState(5).randn(1, size, size, 3).astype(np.float32) * 50
    words = np.zeros((1, cfg.num_words), np.int32)
    words[0, -3:] = [4, 5, 6]
    logits = model((probe, words))["logits"].numpy()
    model.conv2.bias.assign(model.conv2.bias - np.median(logits))
    return model


def write_tiny_run(run_dir: str, words, vocab_path: str, seed: int = 1):
    """A run directory of a decisive tiny RMI model: config.json naming the
    vocabulary `words` (written to `vocab_path`) and one checkpoint. Returns `run_dir`."""
    import tensorflow as tf

    from tf_rmi.config import DataConfig, RunConfig
    from tf_rmi.data.text import write_vocabulary
    from tf_rmi.run_dir import CHECKPOINT_PREFIX, checkpoint_dir

    write_vocabulary(words, vocab_path)
    model = decisive_tiny_model(tiny_model_config(vocab_size=len(words)), seed=seed)
    RunConfig(data=DataConfig(dataset="tiny", vocab_file=vocab_path),
              model=model.config).save(run_dir)
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), checkpoint_dir(run_dir), 1,
                               checkpoint_name=CHECKPOINT_PREFIX).save()
    return run_dir


def copy_run_with_a_missing_config_vocabulary(run_dir: str, dest) -> str:
    """A copy of `run_dir` whose config.json names a vocabulary that does not
    exist, so only the run's own vocab.txt can serve. Returns the copy's path."""
    import json
    import shutil

    shutil.copytree(run_dir, dest)
    path = os.path.join(str(dest), "config.json")
    with open(path) as f:
        config = json.load(f)
    config["data"]["vocab_file"] = "gone/vocab.txt"
    with open(path, "w") as f:
        json.dump(config, f)
    return str(dest)
