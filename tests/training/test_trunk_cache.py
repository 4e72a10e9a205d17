"""trunk_cache: a frozen trunk's outputs computed once per training image."""
import dataclasses
import os

import numpy as np
import pytest

from tests.conftest import tiny_model_config
from tests.records import (SIZE, T, VOCAB_SIZE, checkpoint_tensors, make_record,
                           quadrant_mask, tiny_run_config, write_manifest, write_shards)
from tests.training.test_trunk_pretraining import pretrained  # noqa: F401 (fixture)
from tf_rmi.config import ConfigError
from tf_rmi.data import image_ops, pipeline
from tf_rmi.models.segmenter import build_model
from tf_rmi.training import train_lib, trunk_cache


@pytest.fixture(scope="module")
def tfrecord_dir(tmp_path_factory):
    """4 images, one picture each (as real records: an image id names its pixels),
    4 expressions per image, one per quadrant; written in 2 shards."""
    root = str(tmp_path_factory.mktemp("cache_records"))
    directory = os.path.join(root, "shapes")
    rng = np.random.default_rng(1)

    def examples():
        for image_index in range(4):
            image = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
            for quadrant in range(4):
                n = 4 * image_index + quadrant
                yield make_record(image, quadrant_mask(quadrant), [0] * (T - 2) + [8, 4 + quadrant],
                                  f"sentence {n}", image_id=image_index, ref_id=n)

    count = write_shards(directory, "train", examples(), num_shards=2)
    with open(os.path.join(directory, "vocab.txt"), "w") as f:
        f.write("\n".join(["<pad>", "<go>", "<eos>", "<unk>"]
                           + [f"w{i}" for i in range(VOCAB_SIZE - 4)]) + "\n")
    write_manifest(directory, SIZE, dataset="shapes", vocab_file="vocab.txt",
                   splits={"train": {"count": count}})
    return root


def _frozen_trunk_config(tfrecord_dir, trunk_dir, **train):
    config = tiny_run_config(tfrecord_dir, pretrained=trunk_dir, **train)
    config.model = tiny_model_config(
        vocab_size=0, num_words=config.model.num_words, input_size=SIZE,
        small_trunk_standardize=True, small_trunk_aligned=True, small_trunk_input_scale=1 / 128)
    return config


def test_the_cache_holds_each_training_image_once_with_the_trunks_output(tfrecord_dir):
    config = tiny_run_config(tfrecord_dir)
    model = build_model(dataclasses.replace(config.model, vocab_size=VOCAB_SIZE))
    cache = trunk_cache.build_trunk_cache(model, config.data, "train", input_size=SIZE,
                                          num_words=config.model.num_words)
    assert sorted(cache.image_ids) == [b"0", b"1", b"2", b"3"]  # 16 records of 4 images
    assert cache.features.shape[0] == 4 and cache.rows[cache.image_ids[2]] == 2
    seen = set()
    for example in pipeline.eval_dataset(config.data, "train", num_words=config.model.num_words):
        key = example["image_id"].numpy()
        if key in seen:
            continue
        seen.add(key)
        image = image_ops.caffe_preprocess_tf(example["image"][None])
        np.testing.assert_allclose(cache.features[cache.rows[key]].numpy(),
                                   model.trunk(image)[0].numpy(), rtol=1e-5, atol=1e-5)
    assert len(seen) == 4


def test_a_cache_above_the_memory_limit_is_refused_naming_the_fix(tfrecord_dir):
    config = tiny_run_config(tfrecord_dir)
    model = build_model(dataclasses.replace(config.model, vocab_size=VOCAB_SIZE))
    with pytest.raises(trunk_cache.TrunkCacheError,
                       match=r"4 images of train would take .*without train.cache_trunk_features"):
        trunk_cache.build_trunk_cache(model, config.data, "train", input_size=SIZE,
                                      num_words=config.model.num_words, max_bytes=1)


def test_cached_training_makes_the_updates_of_training_on_images(
        pretrained, tfrecord_dir, tmp_path):  # noqa: F811
    _, trunk_dir, _ = pretrained
    runs = {}
    for cached in (False, True):
        config = _frozen_trunk_config(tfrecord_dir, trunk_dir, iterations=5, snapshot_every=5,
                                      cache_trunk_features=cached, learning_rate=1e-2)
        summary = train_lib.train(config, str(tmp_path / str(cached)), progress=False)
        runs[cached] = summary
    np.testing.assert_allclose(runs[True]["losses"], runs[False]["losses"], rtol=1e-4)
    with_cache = checkpoint_tensors(runs[True]["checkpoint"])
    without = checkpoint_tensors(runs[False]["checkpoint"])
    head = [k for k in without if k.startswith("model/") and "trunk" not in k]
    assert head
    for key in head:
        np.testing.assert_allclose(with_cache[key], without[key], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("changes,message", [
    (dict(pretrained=None), "needs a frozen trunk"),
    (dict(strategy="mirrored"), "one device"),
])
def test_the_cache_needs_a_frozen_trunk_on_one_device(tfrecord_dir, changes, message):
    train = dict(dict(pretrained="trunk_dir", cache_trunk_features=True), **changes)
    config = tiny_run_config(tfrecord_dir, **train)
    with pytest.raises(ConfigError, match=message):
        config.validate()
