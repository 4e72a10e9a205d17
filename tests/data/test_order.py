"""Training order: one epoch is close to a uniform random permutation (the original's
`data_reader`), on records written by preprocessing in both orders."""
import collections
import json
import os

import numpy as np
import pytest

from tf_rmi.config import DataConfig
from tf_rmi.data import order_stats, pipeline, preprocess_lib
from tf_rmi.data.sources import Expression, Source
from tests.data import refer_fixtures as fixtures

IMAGES, SENTENCES = 60, 20  # 1200 records: each image's 20 sentences together in file order
SHARDS = 12  # 100 records per shard
SIZE = 8
MAX_LAG = 10


class ManySentencesSource(Source):
    """`IMAGES` images with one ref of `SENTENCES` sentences each, in file order."""

    name = "tiny"
    vocab_name = None

    def splits(self):
        return ("train", "val")

    def expressions(self, split):
        return [Expression(image_id=str(i), ref_id=str(i), ann_id=str(i),
                           sent_id=f"{i}-{j}", sentence="red box" if j % 2 else "the thing",
                           split=split)
                for i in range(IMAGES) for j in range(SENTENCES)]

    def load_image(self, expr):
        return fixtures.gradient_image(SIZE, SIZE, 3, seed=int(expr.image_id))

    def load_mask(self, expr):
        return fixtures.rect_mask(SIZE, SIZE, (1, 1, 5, 6))


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """{train_order: tfrecord_dir} for the same source written both ways."""
    out = {}
    for order in preprocess_lib.TRAIN_ORDERS:
        root = str(tmp_path_factory.mktemp(order))
        preprocess_lib.build_dataset(ManySentencesSource(), root, splits=["train"],
                                     build_vocab=True, num_shards=SHARDS, image_size=SIZE,
                                     num_words=4, num_workers=1, progress=False,
                                     train_order=order)
        out[order] = root
    return out


def _cfg(root):
    return DataConfig(dataset="tiny", tfrecord_dir=root)


def _stream(root, seed=0, records=None, buffer=16):
    """(image id, sent id) of the training stream, one epoch unless `records` is given."""
    examples = pipeline.train_examples(_cfg(root), "train", seed=seed,
                                       repeat=records is not None, shuffle_buffer=buffer,
                                       input_size=SIZE, num_words=4)
    if records is not None:
        examples = examples.take(records)
    return [(e["image_id"].decode(), e["sent_id"].decode())
            for e in examples.as_numpy_iterator()]


def test_records_are_written_in_the_seeded_permutation(built):
    with open(os.path.join(built["random"], "tiny", "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["settings"]["train_order"] == "random"
    source = ManySentencesSource().expressions("train")
    import tensorflow as tf
    written = [tf.train.Example.FromString(r.numpy()).features.feature["sent_id"]
               .bytes_list.value[0].decode()
               for r in tf.data.TFRecordDataset(pipeline.shard_paths(built["random"], "tiny",
                                                                     "train"))]
    perm = preprocess_lib.training_permutation(len(source))
    assert written == [source[i].sent_id for i in perm]
    assert sorted(perm) == list(range(len(source))) and list(perm) != sorted(perm)


def test_one_epoch_yields_every_record_exactly_once(built):
    stream = _stream(built["random"])
    expected = [e.sent_id for e in ManySentencesSource().expressions("train")]
    assert len(stream) == len(expected)
    assert sorted(s for _, s in stream) == sorted(expected)


def test_each_epoch_is_a_new_permutation_of_all_records(built):
    two = _stream(built["random"], records=2 * IMAGES * SENTENCES)
    first, second = two[:IMAGES * SENTENCES], two[IMAGES * SENTENCES:]
    assert collections.Counter(first) == collections.Counter(second)
    assert len(set(first)) == IMAGES * SENTENCES
    assert first != second


def test_stream_is_deterministic_for_a_seed(built):
    assert _stream(built["random"], seed=3) == _stream(built["random"], seed=3)
    assert _stream(built["random"], seed=3) != _stream(built["random"], seed=4)


def test_consecutive_images_are_as_uncorrelated_as_a_random_permutation(built):
    """Same-image pairs within MAX_LAG steps / their expectation under a uniform
    permutation (~190 pairs, so a random permutation gives 1 +- 0.07)."""
    new = [image for image, _ in _stream(built["random"])]
    uniform = list(np.random.RandomState(0).permutation(new))
    with pytest.warns(UserWarning, match="file order"):
        old = [image for image, _ in _stream(built["file"])]
    assert order_stats.expected_same_image_pairs(new, MAX_LAG) > 150
    ratios = {name: order_stats.same_image_ratio(ids, MAX_LAG)
              for name, ids in (("new", new), ("old", old), ("uniform", uniform))}
    assert 0.75 < ratios["uniform"] < 1.25, ratios  # the statistic itself is calibrated
    assert 0.75 < ratios["new"] < 1.25, ratios
    assert ratios["old"] > 2.0, ratios
    # Distinct images among 100 consecutive samples: ~49.5 for a uniform permutation.
    expected = order_stats.expected_distinct_images(new, 100)
    assert order_stats.distinct_images_per_window(new, 100) > 0.9 * expected
    assert order_stats.distinct_images_per_window(old, 100) < 0.7 * expected


def test_shuffle_buffer_holds_at_least_one_shard(built):
    assert pipeline.largest_shard(built["random"], "tiny", "train") == 100
    # A 1-record buffer is raised to the shard size: the stream is still mixed.
    stream = [image for image, _ in _stream(built["random"], buffer=1)]
    assert 0.75 < order_stats.same_image_ratio(stream, MAX_LAG) < 1.25


def test_statistics_on_hand_computed_sequences():
    ids = [0, 0, 1, 1, 2, 2]
    assert order_stats.same_image_pairs(ids) == 3
    # Each image has 2 of 6 samples: p = 3 * 2 / 30 = 0.2, over 5 lag-1 pairs.
    assert order_stats.expected_same_image_pairs(ids) == pytest.approx(1.0)
    assert order_stats.same_image_ratio(ids) == pytest.approx(3.0)
    assert order_stats.same_image_pairs(ids, max_lag=2) == 3
    assert order_stats.distinct_images_per_window([0, 0, 1, 2, 2, 2], 3) == 1.5
    # A window of all samples sees every image.
    assert order_stats.expected_distinct_images(ids, 6) == pytest.approx(3.0)


def test_simulated_stream_is_the_pipeline_order():
    shards = [[10 * s + i for i in range(7)] for s in range(5)]
    stream = order_stats.simulate_stream(shards, seed=2, shuffle_buffer=7)
    assert sorted(stream) == sorted(v for s in shards for v in s)
    assert stream == order_stats.simulate_stream(shards, seed=2, shuffle_buffer=7)


def test_unknown_train_order_is_refused(tmp_path):
    with pytest.raises(ValueError, match="train_order"):
        preprocess_lib.build_dataset(ManySentencesSource(), str(tmp_path), build_vocab=True,
                                     splits=["train"], progress=False, train_order="sorted")
