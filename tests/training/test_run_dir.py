"""Run directories: restore by directory or prefix; a mismatched checkpoint is named."""
import numpy as np
import pytest

from tests.conftest import tiny_model_config
from tests.records import write_run
from tf_rmi.config import RunConfig
from tf_rmi.models.segmenter import build_model
from tf_rmi.training.run_dir import resolve_checkpoint, restore_model


def _save_run(root, **overrides):
    cfg = tiny_model_config(**overrides)
    model = build_model(cfg)
    return model, write_run(root, model)


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


def test_run_vocab_file_prefers_the_copy_then_the_config_then_says_what_to_pass(tmp_path):
    import os

    from tf_rmi.config import DataConfig
    from tf_rmi.training.run_dir import run_vocab_file

    run = tmp_path / "run"
    other = tmp_path / "words.txt"
    other.write_text("<pad>\n<go>\n<eos>\n<unk>\n")
    RunConfig(data=DataConfig(vocab_file=str(other))).save(str(run))
    assert run_vocab_file(str(run)) == str(other)
    (run / "vocab.txt").write_text("<pad>\n<go>\n<eos>\n<unk>\n")
    assert run_vocab_file(str(run)) == os.path.join(str(run), "vocab.txt")
    os.remove(run / "vocab.txt")
    RunConfig(data=DataConfig(tfrecord_dir=str(tmp_path / "no_records"))).save(str(run))
    with pytest.raises(FileNotFoundError, match="holds no vocab.txt .*pass --vocab_file"):
        run_vocab_file(str(run))


def test_training_refuses_to_resume_with_another_vocabulary(tmp_path):
    from tf_rmi.training import train_lib
    from tf_rmi.config import DataConfig

    words = tmp_path / "words.txt"
    words.write_text("<pad>\n<go>\n<eos>\n<unk>\na\n")
    config = RunConfig(data=DataConfig(vocab_file=str(words)))
    run = tmp_path / "run"
    train_lib._copy_vocabulary(config, str(run), resuming=False)
    assert (run / "vocab.txt").read_text() == words.read_text()
    train_lib._copy_vocabulary(config, str(run), resuming=True)  # same words: fine
    words.write_text("<pad>\n<go>\n<eos>\n<unk>\nb\n")
    with pytest.raises(train_lib.ConfigMismatchError, match="vocab.txt differs"):
        train_lib._copy_vocabulary(config, str(run), resuming=True)
    train_lib._copy_vocabulary(config, str(run), resuming=False)  # a fresh run takes the new one
    assert (run / "vocab.txt").read_text().split()[-1] == "b"
