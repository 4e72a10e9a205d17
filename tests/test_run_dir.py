"""Run directories: restore by directory or prefix; a mismatched checkpoint is named."""
import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import tiny_model_config
from tf_rmi.config import RunConfig
from tf_rmi.models.segmenter import build_model
from tf_rmi.run_dir import CHECKPOINT_PREFIX, checkpoint_dir, resolve_checkpoint, restore_model


def _save_run(root, **overrides):
    cfg = tiny_model_config(**overrides)
    model = build_model(cfg)
    RunConfig(model=cfg).save(str(root))
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model),
                                         checkpoint_dir(str(root)), 1,
                                         checkpoint_name=CHECKPOINT_PREFIX)
    return model, manager.save()


def test_restore_by_directory_and_by_prefix_give_the_same_model(tmp_path):
    model, prefix = _save_run(tmp_path)
    images = np.zeros((1, 64, 64, 3), np.float32)
    words = np.array([[0, 0, 0, 1, 2, 3]], np.int32)
    expected = model((images, words))["logits"].numpy()
    for path in (str(tmp_path), prefix):
        restored, config, found = restore_model(path)
        assert found == prefix and config.model.vocab_size == 50
        np.testing.assert_allclose(restored((images, words))["logits"].numpy(), expected)


def test_checkpoint_of_another_vocabulary_size_is_a_clear_error(tmp_path):
    _save_run(tmp_path, vocab_size=51)
    RunConfig(model=tiny_model_config(vocab_size=50)).save(str(tmp_path))
    with pytest.raises(ValueError, match="does not fit the model .*vocab_size=50"):
        restore_model(str(tmp_path))


def test_checkpoint_of_another_model_kind_is_a_clear_error(tmp_path):
    _save_run(tmp_path, model="LSTM")
    RunConfig(model=tiny_model_config(model="RMI")).save(str(tmp_path))
    with pytest.raises(ValueError, match="does not fit the model .*model=RMI"):
        restore_model(str(tmp_path))


def test_empty_run_directory_says_to_train_first(tmp_path):
    with pytest.raises(FileNotFoundError, match="train first"):
        resolve_checkpoint(str(tmp_path))
