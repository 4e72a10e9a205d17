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
