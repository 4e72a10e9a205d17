"""tf.data input pipelines over the TFRecord shards written by `make preprocess`.

Layout (shard names, listing and the manifest: `tf_rmi.data.shards`):
`<tfrecord_dir>/<dataset>/<split>-NNNNN-of-MMMMM.tfrecord` with a manifest
`<tfrecord_dir>/<dataset>/manifest.json` (written by the preprocess step; read
leniently here: only `vocab_file`, `settings.image_size`, `settings.train_order`
and the splits' counts are used when present).

Training records are resized-and-padded to S x S; the network input is the
Caffe-preprocessed BGR image, as the original's `im[:,:,::-1] - mu`. S
(`input_size`) and T (`num_words`) are the model's (`ModelConfig`): the readers
take them as arguments and check the records against them; `data_cfg` (a
`config.DataConfig`) says where the records are.
"""
from __future__ import annotations

import os
import warnings
from typing import Callable, List, Optional

import tensorflow as tf

from tf_rmi.data import image_ops, schema
from tf_rmi.data.shards import (  # noqa: F401  (MANIFEST_NAME, shard_name: re-exported)
    MANIFEST_NAME, dataset_dir, largest_shard, manifest_or_none, read_manifest, shard_name,
    shard_paths, training_order)


def resolve_vocab_file(data_cfg) -> str:
    """`data_cfg.vocab_file`, or the manifest's `vocab_file` (relative paths
    are taken relative to the manifest's directory)."""
    if data_cfg.vocab_file:
        return data_cfg.vocab_file
    manifest = read_manifest(data_cfg.tfrecord_dir, data_cfg.dataset)
    vocab = manifest.get("vocab_file")
    if not vocab:
        raise ValueError(f"The manifest of {data_cfg.dataset} names no vocab_file; "
                         "pass the vocabulary explicitly (--vocab_file)")
    if not os.path.isabs(vocab):
        vocab = os.path.join(dataset_dir(data_cfg.tfrecord_dir, data_cfg.dataset), vocab)
    return vocab


def _first_record(paths: List[str]) -> bytes:
    """The first record of the first non-empty shard (a shard whose every sample
    was skipped is legitimately empty)."""
    for path in paths:
        for record in tf.data.TFRecordDataset([path]).take(1):
            return record.numpy()
    raise ValueError(f"The {len(paths)} shard(s) starting with {paths[0]} hold no records: "
                     "every sample was skipped; see the preprocess summary and re-run "
                     "`make preprocess` for this split")


def _check_records(paths: List[str], data_cfg, split: str, num_words: int,
                   input_size: Optional[int] = None) -> None:
    """Up-front checks with clear errors instead of failures deep in tf.data.
    `input_size` given: training records (resized-and-padded, at that size).
    ValueError naming the fix when the records hold another T than `num_words`,
    when training is given original-size (evaluation) records, or when the
    manifest's image_size differs from `input_size`."""
    first = _first_record(paths)
    length = schema.words_length(first)
    if length != num_words:
        raise ValueError(
            f"Records of split '{split}' hold {length} word ids per expression but the "
            f"configuration asks for num_words={num_words}: set model.num_words "
            f"(--num_words) to {length} or re-run `make preprocess` with the wanted T")
    if input_size is None:
        return
    if not schema.is_padded(first):
        raise ValueError(
            f"Split '{split}' was written at original image size (an evaluation split); "
            "training needs resized-and-padded records: train on a training split "
            "(train / trainval) or re-run preprocess")
    manifest = manifest_or_none(data_cfg.tfrecord_dir, data_cfg.dataset) or {}
    settings = manifest.get("settings") or {}
    size = settings.get("image_size") if isinstance(settings, dict) else None
    if size is not None and int(size) != input_size:
        raise ValueError(
            f"Records of {data_cfg.dataset} were written at image_size={size} but the "
            f"configuration asks for input_size={input_size}: set model.input_size "
            f"(--input_size) to {size} or re-run `make preprocess` at the wanted size")


# Shards read at once by the training stream (tf.data interleave, one record each in turn).
INTERLEAVE_CYCLE = 4


def shuffled_records(files: tf.data.Dataset, read: Callable[[tf.Tensor], tf.data.Dataset],
                     num_files: int, seed: int, shuffle_buffer: int,
                     after_interleave: Optional[Callable] = None) -> tf.data.Dataset:
    """One epoch of the training order: the files in a fresh seeded order every
    epoch, `INTERLEAVE_CYCLE` of them read in turn, then a seeded shuffle buffer.

    `read` maps one element of `files` to its records. Over records written in a
    seeded random order (preprocessing's `train_order="random"`) with a buffer of
    at least one shard, one epoch is close to a uniform permutation of the split
    (see `tf_rmi.data.order_stats`); every record appears exactly once per epoch.
    `after_interleave` (e.g. a tf.distribute record shard) runs before the buffer.
    Deterministic for `seed` under `options.deterministic`.
    """
    if num_files > 1:
        files = files.shuffle(num_files, seed=seed, reshuffle_each_iteration=True)
    records = files.interleave(read, cycle_length=max(1, min(num_files, INTERLEAVE_CYCLE)),
                               num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if after_interleave is not None:
        records = after_interleave(records)
    return records.shuffle(max(1, int(shuffle_buffer)), seed=seed,
                           reshuffle_each_iteration=True)


def train_examples(data_cfg, split: str, seed: int, repeat: bool = True,
                   shuffle_buffer: int = 1000,
                   input_context: Optional[tf.distribute.InputContext] = None, *,
                   input_size: int, num_words: int) -> tf.data.Dataset:
    """The parsed training records (`schema.parse_example` dicts) in training order.

    `input_size` (S) and `num_words` (T) are the model's; records of another
    T, or a manifest of another image size, are refused up front.

    The shuffle buffer holds at least the largest shard (so that a shard's
    records can leave in any order). Warns when the manifest says the records
    were written in file order (each ref's sentences together): the stream is
    then far from a random permutation; re-run `make preprocess`.
    """
    paths = shard_paths(data_cfg.tfrecord_dir, data_cfg.dataset, split)
    _check_records(paths, data_cfg, split, num_words, input_size=input_size)
    order = training_order(data_cfg.tfrecord_dir, data_cfg.dataset)
    if order != "random":
        warnings.warn(
            f"The {split} records of {data_cfg.dataset} in {data_cfg.tfrecord_dir} were "
            f"written in file order (manifest train_order: {order!r}), so consecutive "
            "training samples often share an image, unlike the original's per-epoch random "
            "permutation: re-run `make preprocess` (default train_order=random)", stacklevel=2)
    buffer = max(int(shuffle_buffer),
                 largest_shard(data_cfg.tfrecord_dir, data_cfg.dataset, split))

    files = tf.data.Dataset.from_tensor_slices(paths)
    after_interleave = None
    if input_context is not None and input_context.num_input_pipelines > 1:
        if len(paths) >= input_context.num_input_pipelines:
            files = files.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
        else:
            def after_interleave(records):
                return records.shard(input_context.num_input_pipelines,
                                     input_context.input_pipeline_id)
    records = shuffled_records(files, tf.data.TFRecordDataset, len(paths), seed, buffer,
                               after_interleave)
    if repeat:
        records = records.repeat()

    def parse(serialized):
        return schema.parse_example(serialized, num_words=num_words)

    examples = (records.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
                .filter(lambda example: example["padded"]))
    options = tf.data.Options()
    options.deterministic = True
    return examples.with_options(options)


def length_bucket_boundaries(num_words: int, width: int = 2) -> List[int]:
    """Upper bounds (exclusive) of the sentence-length buckets of `train_dataset`:
    buckets of `width` lengths, [0, 3), [3, 5), ..., up to T = `num_words`."""
    return list(range(width + 1, num_words + 1, width))


def sentence_length(words: tf.Tensor) -> tf.Tensor:
    """int32 []: the non-<pad> ids of one record's `words` [T]."""
    return tf.math.count_nonzero(words, dtype=tf.int32)


def train_dataset(data_cfg, split: str, batch_size: int, seed: int, repeat: bool = True,
                  shuffle_buffer: int = 1000, input_context: Optional[tf.distribute.InputContext] = None,
                  *, input_size: int, num_words: int,
                  bucket_by_length: bool = False,
                  trunk_rows: Optional[tf.lookup.StaticHashTable] = None) -> tf.data.Dataset:
    """Shuffled, batched training pairs at the model's `input_size` (S) and
    `num_words` (T) (`train_examples`).

    Yields `({"images": float32 [N,S,S,3] Caffe-preprocessed BGR,
    "words": int32 [N,T]}, float32 mask [N,S,S,1] with values 0/1)`, N =
    `batch_size` (incomplete final batches are dropped), in the order of
    `train_examples` (each epoch close to a uniform random permutation of the
    split, as the original's `data_reader`). Only padded records are used.
    Deterministic for a fixed `seed`. With `input_context` (tf.distribute),
    each input pipeline reads its own subset of the shards (or of the records,
    when there are fewer shards than pipelines).

    `bucket_by_length` (not the original's, whose batch is 1): each batch is
    drawn from one bucket of sentence lengths (`length_bucket_boundaries`),
    filled in stream order, so a batch's longest sentence is close to its
    shortest. The head runs a step only while some sentence of the batch has
    a word there (front padding), so a batch of B sentences costs about as
    many steps as its longest one: the demo's batches of 16 mixed lengths run
    about twice the steps of their mean length.

    `trunk_rows` (image id -> row of a `trunk_cache.TrunkFeatureCache`):
    features carry `"trunk_row"` int32 [N] instead of `"images"` (the frozen
    trunk's output is looked up, not recomputed). A record whose image is
    not in the table fails with its image id named.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    examples = train_examples(data_cfg, split, seed, repeat=repeat,
                              shuffle_buffer=shuffle_buffer, input_context=input_context,
                              input_size=input_size, num_words=num_words)

    def to_pair(example):
        mask = tf.ensure_shape(example["mask"], [input_size, input_size])
        if trunk_rows is None:
            image = tf.ensure_shape(example["image"], [input_size, input_size, 3])
            features = {"images": image_ops.caffe_preprocess_tf(image)}
        else:
            row = trunk_rows.lookup(example["image_id"])
            known = tf.debugging.Assert(row >= 0, [
                "Image", example["image_id"], "of the training records is not in the trunk "
                "feature cache (built from other records?)"])
            with tf.control_dependencies([known]):
                features = {"trunk_row": tf.identity(row)}
        features["words"] = example["words"]
        return features, tf.cast(mask, tf.float32)[:, :, tf.newaxis]

    pairs = examples.map(to_pair, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if bucket_by_length:
        boundaries = length_bucket_boundaries(num_words)
        batched = pairs.bucket_by_sequence_length(
            lambda features, mask: sentence_length(features["words"]), boundaries,
            [batch_size] * (len(boundaries) + 1), drop_remainder=True)
    else:
        batched = pairs.batch(batch_size, drop_remainder=True)
    dataset = batched.prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = True
    return dataset.with_options(options)


def eval_dataset(data_cfg, split: str, *, num_words: int) -> tf.data.Dataset:
    """Parsed records of a split, one expression at a time, in file order.

    Each element is `schema.parse_example`'s dict (original-size image and
    mask for evaluation splits), with `words` of static length T = the
    model's `num_words` (records of another T are refused up front).
    """
    paths = shard_paths(data_cfg.tfrecord_dir, data_cfg.dataset, split)
    _check_records(paths, data_cfg, split, num_words)
    dataset = tf.data.TFRecordDataset(paths).map(
        lambda s: schema.parse_example(s, num_words=num_words),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    options = tf.data.Options()
    options.deterministic = True
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(options)


def count_records(data_cfg, split: str) -> int:
    """Number of expressions of a split: the manifest's count, else by reading."""
    manifest = manifest_or_none(data_cfg.tfrecord_dir, data_cfg.dataset) or {}
    entry = (manifest.get("splits") or {}).get(split)
    if isinstance(entry, dict) and isinstance(entry.get("count"), int):
        return entry["count"]
    paths = shard_paths(data_cfg.tfrecord_dir, data_cfg.dataset, split)
    return int(tf.data.TFRecordDataset(paths).reduce(0, lambda n, _: n + 1).numpy())
