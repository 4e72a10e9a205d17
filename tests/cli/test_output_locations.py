"""Unwritable or full output locations (run, export and TFRecord directories):
a one-line error naming the path and the fix, and nothing half-written.

Tests run as root, where a read-only mode does not stop writes; the failures are
made real instead: a path under a regular file (NotADirectoryError for any user)
and a full disk simulated by making the final rename / save raise ENOSPC.
"""
import errno
import os

import pytest
import tensorflow as tf

from tests.conftest import write_tiny_run
from tests.records import tiny_run_config, write_quadrant_records
from tf_rmi.serving import export_lib
from tf_rmi.training import train_lib
from tf_rmi.data import preprocess_lib

FIX = "make the location writable and give it free space, or choose another location"


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _one_line_naming(err, path):
    message = str(err.value)
    assert "\n" not in message and path in message and FIX in message, message
    return message


def _files(root):
    return sorted(os.path.relpath(os.path.join(d, f), root)
                  for d, _, files in os.walk(root) for f in files)


@pytest.fixture(scope="module")
def records(tmp_path_factory):
    return write_quadrant_records(str(tmp_path_factory.mktemp("out_records")), num_images=1)


def test_run_directory_under_a_file(records, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    run_dir = str(blocker / "run")
    with pytest.raises(OSError) as err:
        train_lib.train(tiny_run_config(records, iterations=1), run_dir, progress=False)
    assert "Not a directory" in _one_line_naming(err, run_dir)
    assert _files(tmp_path) == ["a_file"]


def test_full_disk_while_preparing_the_run_directory_leaves_no_partial_file(records, tmp_path,
                                                                           monkeypatch):
    run_dir = str(tmp_path / "run")
    monkeypatch.setattr(os, "replace", _disk_full)
    with pytest.raises(OSError) as err:
        train_lib.train(tiny_run_config(records, iterations=1), run_dir, progress=False)
    assert "No space left" in _one_line_naming(err, run_dir)
    assert _files(run_dir) == []  # no vocab.txt, config.json or their temporary files


def test_full_disk_at_a_checkpoint_names_the_checkpoint_directory(records, tmp_path, monkeypatch):
    run_dir = str(tmp_path / "run")
    monkeypatch.setattr(tf.train.CheckpointManager, "save", _disk_full)
    with pytest.raises(OSError) as err:
        train_lib.train(tiny_run_config(records, iterations=1, snapshot_every=1), run_dir,
                        progress=False)
    _one_line_naming(err, os.path.join(run_dir, "checkpoints"))
    assert tf.train.latest_checkpoint(os.path.join(run_dir, "checkpoints")) is None


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("out_run")
    words = ["<pad>", "<go>", "<eos>", "<unk>", "the", "red", "circle"]
    return write_tiny_run(str(root / "run"), words, str(root / "vocab.txt"))


def test_export_under_a_file(tiny_run, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OSError) as err:
        export_lib.export_run(tiny_run, str(blocker / "exports" / "m"))
    _one_line_naming(err, str(blocker / "exports"))
    assert _files(tmp_path) == ["a_file"]


def test_full_disk_during_export_keeps_the_previous_export_and_no_temporary(tiny_run, tmp_path,
                                                                          monkeypatch):
    previous = tmp_path / "m"
    previous.mkdir()
    (previous / "saved_model.pb").write_bytes(b"the previous export")
    monkeypatch.setattr(tf.saved_model, "save", _disk_full)
    with pytest.raises(OSError) as err:
        export_lib.export_run(tiny_run, str(previous))
    _one_line_naming(err, str(previous))
    assert _files(tmp_path) == ["m/saved_model.pb"]
    assert (previous / "saved_model.pb").read_bytes() == b"the previous export"


_SHAPES = dict(num_train_images=2, num_val_images=0, num_test_images=0, min_size=48, max_size=48)


def test_tfrecord_directory_under_a_file(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(OSError) as err:
        preprocess_lib.preprocess("shapes", None, str(blocker / "records"), splits=["train"],
                                  num_workers=1, image_size=32, progress=False,
                                  shapes_args=_SHAPES)
    _one_line_naming(err, str(blocker / "records"))
    assert _files(tmp_path) == ["a_file"]


def test_full_disk_while_writing_a_shard_leaves_no_partial_shard(tmp_path, monkeypatch):
    out = tmp_path / "records"
    replace = os.replace

    def shards_do_not_fit(source, target):
        if str(target).endswith(".tfrecord"):
            _disk_full()
        replace(source, target)

    monkeypatch.setattr(os, "replace", shards_do_not_fit)
    with pytest.raises(OSError) as err:
        preprocess_lib.preprocess("shapes", None, str(out), splits=["train"], num_workers=1,
                                  image_size=32, progress=False, shapes_args=_SHAPES)
    message = _one_line_naming(err, str(out / "shapes" / "train-00000-of-"))
    assert "No space left" in message
    assert not [f for f in _files(out) if ".tfrecord" in f or ".tmp" in f]
