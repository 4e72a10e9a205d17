"""The public pieces `train_lib.train` orchestrates: `TrainingLogger` (TensorBoard
windows and the progress bar) and `CheckpointWriter` (where each worker saves)."""
import os

import numpy as np
import tensorflow as tf
from tensorboard.backend.event_processing import event_accumulator

from tf_rmi.training import train_lib

VALUES = ("loss", "cls_loss", "reg_loss", "learning_rate", "accuracy/all",
          "accuracy/positive", "accuracy/negative")


def _values(step):
    return {name: float(step) + i / 10 for i, name in enumerate(VALUES)}


def _scalars(log_dir):
    acc = event_accumulator.EventAccumulator(log_dir, size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    return {tag: {e.step: float(tf.make_ndarray(e.tensor_proto)) for e in acc.Tensors(tag)}
            for tag in acc.Tags()["tensors"]}


def test_logger_writes_window_means_and_images_when_due(tmp_path):
    logger = train_lib.TrainingLogger(str(tmp_path), log_every=2, is_chief=True, start_step=0,
                                      end_step=5, progress=False)
    image_steps = []
    for step in range(1, 6):
        logger.log_step(step, _values(step), image_steps.append)
    logger.close()
    loss = _scalars(str(tmp_path / "logs"))["loss"]
    # Windows {1, 2} and {3, 4} at their last step, then the last step alone.
    assert loss == {2: 1.5, 4: 3.5, 5: 5.0}
    # Images every IMAGE_SUMMARY_EVERY_LOGS windows (here: not before step 20) and at the end.
    assert image_steps == [5]


def test_logger_of_a_non_chief_writes_no_logs(tmp_path):
    logger = train_lib.TrainingLogger(str(tmp_path), log_every=1, is_chief=False, start_step=3,
                                      end_step=4, progress=True)
    called = []
    logger.log_step(4, _values(4), called.append)
    logger.show_progress(4, val_iou=0.5)
    logger.close()
    assert not os.path.exists(tmp_path / "logs") and called == []


def test_checkpoint_writer_saves_in_the_run_or_in_a_removed_temporary(tmp_path):
    checkpoint = tf.train.Checkpoint(v=tf.Variable(np.arange(3.0)))
    chief = train_lib.CheckpointWriter(checkpoint, str(tmp_path / "run"), keep=2)
    for step in (1, 2, 3):
        chief.save(step)
    assert sorted(n for n in os.listdir(tmp_path / "run" / "checkpoints")
                  if n.endswith(".index")) == ["ckpt-2.index", "ckpt-3.index"]
    worker = train_lib.CheckpointWriter(checkpoint, str(tmp_path / "run"), keep=2,
                                        is_chief=False, task_id=1)
    temporary = worker.worker_tmp
    assert os.path.isdir(temporary) and not temporary.startswith(str(tmp_path))
    worker.save(4)
    assert not os.path.exists(temporary)  # deleted after each save
    worker.close()
    assert tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")).endswith("ckpt-3")
