"""The frozen trunk's output, computed once per training image (`train.cache_trunk_features`).

A frozen trunk (the original's DeepLab; the demo's pretrained small trunk)
maps each image to the same features at every step: the training step would
recompute them for every expression of the image, every epoch. With the cache,
`train` runs the trunk once over the distinct images of the training split,
keeps the outputs in memory, and the training stream carries each record's
row in that table instead of its pixels (`pipeline.train_dataset(trunk_rows=...)`);
the step gathers the rows and runs only the visual projection and the head
(`make_train_step(..., trunk_features=cache.features)`). Same loss and updates as
without it, up to float rounding; validation and evaluation still run the
whole model on images.

Only for one device (strategy 'default') and a frozen trunk; the features must
fit in memory (`max_bytes`): the demo's 1000 images of 16 x 16 x 128 cells
take 131 MB, a COCO split at 320 px (40 x 40 x 2048 per image) would take
hundreds of GB, hence the check.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List

import numpy as np
import tensorflow as tf

DEFAULT_MAX_BYTES = 4 << 30  # 4 GiB


class TrunkCacheError(ValueError):
    """The trunk features of a split cannot be cached (too large)."""


@dataclasses.dataclass
class TrunkFeatureCache:
    """`features` float32 [num_images, h, w, C]: the trunk output of image
    `image_ids[k]` in row k; `rows` maps an image id (bytes) to its row."""

    image_ids: List[bytes]
    features: tf.Tensor
    rows: Dict[bytes, int]

    def lookup_table(self) -> tf.lookup.StaticHashTable:
        """image id (tf.string) -> row (int32); -1 for an image not cached."""
        keys = tf.constant(self.image_ids, tf.string)
        values = tf.range(len(self.image_ids), dtype=tf.int32)
        return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(keys, values), -1)


def build_trunk_cache(model, data_cfg, split: str, *, input_size: int, num_words: int,
                      batch_size: int = 16,
                      max_bytes: int = DEFAULT_MAX_BYTES) -> TrunkFeatureCache:
    """Runs `model.trunk` once over every distinct image of the split's padded
    (training) records, in file order; returns the cache.

    Raises TrunkCacheError, before computing anything, when the features
    would take more than `max_bytes`, naming the size and the fix."""
    from tf_rmi.data import image_ops, pipeline, schema

    paths = pipeline.shard_paths(data_cfg.tfrecord_dir, data_cfg.dataset, split)
    records = tf.data.TFRecordDataset(paths).map(
        lambda s: schema.parse_example(s, num_words=num_words),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    images, image_ids, rows = [], [], {}
    for example in records.filter(lambda e: e["padded"]).as_numpy_iterator():
        key = bytes(example["image_id"])
        if key not in rows:
            rows[key] = len(image_ids)
            image_ids.append(key)
            images.append(example["image"])
    probe = model.trunk(tf.zeros([1, input_size, input_size, 3], model.compute_dtype))
    per_image = int(np.prod(probe.shape[1:])) * 4
    total = per_image * len(image_ids)
    if total > max_bytes:
        raise TrunkCacheError(
            f"Caching the trunk features of the {len(image_ids)} images of {split} would take "
            f"{total / 2**30:.1f} GiB ({tuple(probe.shape[1:])} float32 per image), above "
            f"{max_bytes / 2**30:.1f} GiB: train without train.cache_trunk_features")
    trunk = tf.function(lambda x: tf.cast(model.trunk(tf.cast(x, model.compute_dtype)),
                                          tf.float32))
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = np.stack(images[start:start + batch_size])
        outputs.append(trunk(image_ops.caffe_preprocess_tf(tf.constant(batch))))
    features = (tf.concat(outputs, 0) if outputs
                else tf.zeros([0, *probe.shape[1:]], tf.float32))
    return TrunkFeatureCache(image_ids, features, rows)
