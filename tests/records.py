"""Shared test data written to disk: TFRecord shards and run directories.

- `make_record` / `write_shards` / `write_manifest`: one expression as a
  tf.train.Example, shards of a split written round-robin, a dataset's
  manifest.json.
- The quadrant set (`write_quadrant_records`, `SIZE`, `T`, `VOCAB_SIZE`,
  `QUADRANT_WORDS`, `quadrant_mask`): learnable records that the training,
  preemption, distribution and command-line tests train on, and
  `tiny_run_config`, a fast RunConfig over them.
- `checkpoint_tensors`: a checkpoint's training state, for comparing runs.
- `write_run`: a run directory (config.json and one checkpoint) of a model in
  memory, as training would leave it.

Helpers only: the pytest fixtures built on them live in the conftest files.
"""
import json
import os

import numpy as np
import tensorflow as tf

from tests.conftest import tiny_model_config
from tf_rmi.config import DataConfig, RunConfig, TrainConfig
from tf_rmi.data import pipeline, schema
from tf_rmi.data.text import write_vocabulary
from tf_rmi.training.run_dir import CHECKPOINT_PREFIX, checkpoint_dir

# ------------------------------------------------------------------- records


def make_record(image, mask, words, sentence, image_id, ref_id, ann_id=None, sent_id=None,
                padded=True) -> tf.train.Example:
    """One expression: `image` [H, W, 3] uint8 and `mask` [H, W] stored as PNGs,
    the original size read from the image. `ann_id` and `sent_id` default to `ref_id`."""
    return schema.make_example(
        schema.encode_png(image), schema.encode_mask_png(mask), words, sentence,
        image_id=image_id, ref_id=ref_id,
        ann_id=ref_id if ann_id is None else ann_id,
        sent_id=ref_id if sent_id is None else sent_id,
        orig_height=image.shape[0], orig_width=image.shape[1], padded=padded)


def write_shards(directory, split, examples, num_shards=1) -> int:
    """Writes `examples` (tf.train.Example) into `directory`/<split>-0000i-of-...,
    example n into shard n % num_shards, in order; no examples gives empty shards.
    Returns the number written."""
    os.makedirs(directory, exist_ok=True)
    writers = [tf.io.TFRecordWriter(os.path.join(directory, pipeline.shard_name(split, i, num_shards)))
               for i in range(num_shards)]
    count = 0
    try:
        for count, example in enumerate(examples, start=1):
            writers[(count - 1) % num_shards].write(example.SerializeToString())
    finally:
        for writer in writers:
            writer.close()
    return count


def write_manifest(directory, image_size, **fields):
    """`directory`/manifest.json: settings.image_size plus `fields` (dataset, vocab_file, splits...)."""
    with open(os.path.join(directory, "manifest.json"), "w") as f:
        json.dump({**fields, "settings": {"image_size": image_size}}, f)


# ------------------------------------------------------------ the quadrant set

SIZE = 64  # tiny_model_config's input_size: 8x8 logits
# Words per expression: two words and a pad step before them. The head is
# unrolled over T steps, so every training run here traces in about half the
# time it takes at T=6.
T = 3
VOCAB_SIZE = 50
# Word ids 4..7 name a quadrant (the mask), which is also the bright quadrant of the image.
QUADRANT_WORDS = (4, 5, 6, 7)


def quadrant_mask(quadrant):
    """[SIZE, SIZE] bool: quadrant 0..3 (row-major) set."""
    mask = np.zeros((SIZE, SIZE), bool)
    half = SIZE // 2
    row, col = divmod(quadrant, 2)
    mask[row * half:(row + 1) * half, col * half:(col + 1) * half] = True
    return mask


def write_quadrant_records(root, num_images=4):
    """Writes <root>/shapes/train-00000-of-00002 ... with a manifest and a 50-word
    vocabulary: 4 expressions per image, one per quadrant. Returns `root`."""
    directory = os.path.join(root, "shapes")
    rng = np.random.default_rng(0)

    def examples():
        n = 0
        for image_index in range(num_images):
            noise = rng.integers(0, 96, (SIZE, SIZE, 3), dtype=np.uint8)
            for quadrant, word in enumerate(QUADRANT_WORDS):
                # The referred quadrant is also the bright one: visible and named.
                mask = quadrant_mask(quadrant)
                image = np.where(mask[..., None], noise + 160, noise).astype(np.uint8)
                words = [0] * (T - 2) + [8 + image_index % 3, word]
                yield make_record(image, mask, words, f"sentence {n}", image_id=image_index, ref_id=n)
                n += 1

    count = write_shards(directory, "train", examples(), num_shards=2)
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
        f.write("\n".join(["<pad>", "<go>", "<eos>", "<unk>"] +
                          [f"w{i}" for i in range(VOCAB_SIZE - 4)]) + "\n")
    write_manifest(directory, SIZE, dataset="shapes", vocab_file="vocab.txt",
                   splits={"train": {"count": count}})
    return root


def tiny_run_config(tfrecord_dir, model="RMI", **train_overrides) -> RunConfig:
    """A RunConfig that trains the tiny model on the quadrant set in seconds."""
    train = dict(iterations=12, snapshot_every=4, batch_size=2, learning_rate=1e-3,
                 end_learning_rate=1e-4, shuffle_buffer=16, log_every=2, seed=3)
    train.update(train_overrides)
    return RunConfig(
        data=DataConfig(dataset="shapes", tfrecord_dir=tfrecord_dir),
        model=tiny_model_config(model=model, vocab_size=0, input_size=SIZE, num_words=T),
        train=TrainConfig(**train))


def checkpoint_tensors(prefix):
    """Every saved tensor of a checkpoint (model, optimizer slots, step) by key,
    less the Checkpoint's own save counter (bookkeeping, not training state)."""
    reader = tf.train.load_checkpoint(prefix)
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
            if not key.startswith(("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter"))}


# ------------------------------------------------------------- run directories


def write_run(run_dir, model, data=None, *, words=None, vocab_path=None, checkpoint_number=None):
    """A run directory as training leaves one: config.json (a RunConfig of `data`
    and `model.config`) and one checkpoint of `model` in <run_dir>/checkpoints.

    With `words`, writes them to `vocab_path` first and, when `data` is not
    given, names that vocabulary in a DataConfig of the dataset "tiny".
    `data` defaults to DataConfig(). Returns the checkpoint prefix."""
    run_dir = str(run_dir)
    if words is not None:
        write_vocabulary(words, vocab_path)
        if data is None:
            data = DataConfig(dataset="tiny", vocab_file=vocab_path)
    RunConfig(data=DataConfig() if data is None else data, model=model.config).save(run_dir)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=model), checkpoint_dir(run_dir),
                                         1, checkpoint_name=CHECKPOINT_PREFIX)
    return manager.save(checkpoint_number=checkpoint_number)
