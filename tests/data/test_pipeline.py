"""tf.data readers over tiny shards (tests/records.py make_record, write_shards)."""
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.records import make_record, write_manifest, write_shards
from tf_rmi.config import DataConfig
from tf_rmi.data import image_ops, pipeline

SIZE = 8
T = 5


def _write_split(directory, split, records, num_shards):
    """Writes `records` (list of (image, mask, words, padded)) round-robin into shards."""
    write_shards(directory, split, [
        make_record(image, mask, words, f"sentence {n}", image_id=n, ref_id=n, padded=padded)
        for n, (image, mask, words, padded) in enumerate(records)], num_shards)


@pytest.fixture(scope="module")
def tfrecord_dir(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("tfrecords"))
    directory = os.path.join(root, "shapes")
    rng = np.random.default_rng(0)
    train = []
    for n in range(12):
        image = np.full((SIZE, SIZE, 3), n, np.uint8)  # pixel value identifies the record
        image[..., 1] = 100
        mask = np.zeros((SIZE, SIZE), bool)
        mask[: n % SIZE + 1, :2] = True
        words = np.array([0] * (T - 2) + [n + 4, 7], np.int32)
        train.append((image, mask, words, True))
    _write_split(directory, "train", train, num_shards=3)
    val = [(rng.integers(0, 256, (5, 7, 3), dtype=np.uint8), rng.uniform(size=(5, 7)) > 0.5,
            np.arange(T, dtype=np.int32) + n, False) for n in range(3)]
    _write_split(directory, "val", val, num_shards=1)
    write_manifest(directory, SIZE, dataset="shapes", vocab_file="vocab.txt",
                   splits={"train": {"count": 12, "shards": []}, "val": {"count": 3}})
    return root


def _cfg(root):
    return DataConfig(dataset="shapes", tfrecord_dir=root)


SHAPE = dict(input_size=SIZE, num_words=T)  # the model's S and T, as the records'


def _ids(batches):
    """Record index of each element: its red value (BGR channel 2 plus the mean)."""
    values = [features["images"][:, 0, 0, 2].numpy() + image_ops.CAFFE_MEAN_BGR[2]
              for features, _ in batches]
    return [int(round(v)) for batch in values for v in batch]


def test_shard_paths_are_sorted_and_complete(tfrecord_dir):
    paths = pipeline.shard_paths(tfrecord_dir, "shapes", "train")
    assert [os.path.basename(p) for p in paths] == [
        "train-00000-of-00003.tfrecord", "train-00001-of-00003.tfrecord",
        "train-00002-of-00003.tfrecord"]


def test_missing_split_error_names_split_and_command(tfrecord_dir):
    with pytest.raises(FileNotFoundError, match=r"split 'testA'.*make preprocess"):
        pipeline.shard_paths(tfrecord_dir, "shapes", "testA")


def test_incomplete_shards_are_reported(tmp_path):
    directory = tmp_path / "shapes"
    directory.mkdir()
    (directory / "train-00001-of-00002.tfrecord").write_bytes(b"")
    with pytest.raises(ValueError, match="Incomplete shards"):
        pipeline.shard_paths(str(tmp_path), "shapes", "train")


def test_train_dataset_shapes_dtypes_and_values(tfrecord_dir):
    dataset = pipeline.train_dataset(_cfg(tfrecord_dir), "train", batch_size=4, seed=1, **SHAPE)
    features, mask = next(iter(dataset))
    assert features["images"].shape == (4, SIZE, SIZE, 3) and features["images"].dtype == tf.float32
    assert features["words"].shape == (4, T) and features["words"].dtype == tf.int32
    assert mask.shape == (4, SIZE, SIZE, 1) and mask.dtype == tf.float32
    assert set(np.unique(mask.numpy())) <= {0.0, 1.0}
    # Record n has RGB (n, 100, n): BGR minus the Caffe mean.
    n = int(round(features["images"][0, 0, 0, 2].numpy() + image_ops.CAFFE_MEAN_BGR[2]))
    np.testing.assert_array_equal(features["images"][0, 0, 0].numpy(),
                                  image_ops.caffe_preprocess(np.array([n, 100, n], np.uint8)))
    assert features["words"][0].numpy().tolist() == [0, 0, 0, n + 4, 7]
    assert mask[0, :, 0, 0].numpy().sum() == n % SIZE + 1


def test_train_dataset_is_deterministic_for_a_seed(tfrecord_dir):
    def order(seed):
        dataset = pipeline.train_dataset(_cfg(tfrecord_dir), "train", batch_size=3, seed=seed,
                                         **SHAPE)
        return _ids(dataset.take(8))

    first = order(5)
    assert first == order(5)
    assert first != order(6)
    assert sorted(first[:12]) == list(range(12))  # one epoch sees every record once


def test_train_dataset_without_repeat_ends_after_one_epoch(tfrecord_dir):
    dataset = pipeline.train_dataset(_cfg(tfrecord_dir), "train", batch_size=5, seed=0,
                                     repeat=False, **SHAPE)
    assert len(_ids(dataset)) == 10  # 12 records, last incomplete batch dropped


def test_train_dataset_rejects_wrong_num_words(tfrecord_dir):
    with pytest.raises(ValueError, match=r"num_words=20: set model.num_words \(--num_words\) to 5"):
        pipeline.train_dataset(_cfg(tfrecord_dir), "train", batch_size=1, seed=0,
                               input_size=SIZE, num_words=20)
    with pytest.raises(ValueError, match="num_words=20"):
        pipeline.eval_dataset(_cfg(tfrecord_dir), "val", num_words=20)


def test_train_dataset_rejects_wrong_image_size(tfrecord_dir):
    with pytest.raises(ValueError, match=r"image_size=8 .* set model.input_size \(--input_size\)"):
        pipeline.train_dataset(_cfg(tfrecord_dir), "train", batch_size=1, seed=0,
                               input_size=16, num_words=T)


def test_train_dataset_rejects_an_evaluation_split(tfrecord_dir):
    with pytest.raises(ValueError, match="original image size"):
        pipeline.train_dataset(_cfg(tfrecord_dir), "val", batch_size=1, seed=0, **SHAPE)


def test_eval_dataset_yields_records_in_file_order(tfrecord_dir):
    elements = list(pipeline.eval_dataset(_cfg(tfrecord_dir), "val", num_words=T))
    assert [e["sentence"].numpy() for e in elements] == [b"sentence 0", b"sentence 1", b"sentence 2"]
    assert elements[0]["image"].shape == (5, 7, 3) and elements[0]["mask"].shape == (5, 7)
    assert elements[2]["words"].numpy().tolist() == [2, 3, 4, 5, 6]
    assert not elements[0]["padded"].numpy()
    assert elements[0]["orig_height"].numpy() == 5 and elements[0]["orig_width"].numpy() == 7


def test_manifest_vocab_and_counts(tfrecord_dir):
    cfg = _cfg(tfrecord_dir)
    assert pipeline.read_manifest(tfrecord_dir, "shapes")["dataset"] == "shapes"
    assert pipeline.resolve_vocab_file(cfg) == os.path.join(tfrecord_dir, "shapes", "vocab.txt")
    assert pipeline.count_records(cfg, "val") == 3


def test_missing_manifest_names_the_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="make preprocess"):
        pipeline.read_manifest(str(tmp_path), "shapes")


def test_input_context_reads_only_its_own_shards(tfrecord_dir):
    context = tf.distribute.InputContext(num_input_pipelines=3, input_pipeline_id=1)
    dataset = pipeline.train_dataset(_cfg(tfrecord_dir), "train", batch_size=2, seed=0,
                                     repeat=False, input_context=context, **SHAPE)
    assert sorted(_ids(dataset)) == [1, 4, 7, 10]  # shard 1 holds records n % 3 == 1


@pytest.fixture(scope="module")
def mixed_length_dir(tmp_path_factory):
    """36 training records, record n with 1 + n % T words (front-padded)."""
    root = str(tmp_path_factory.mktemp("mixed_lengths"))
    directory = os.path.join(root, "shapes")
    records = []
    for n in range(36):
        image = np.full((SIZE, SIZE, 3), n, np.uint8)
        length = 1 + n % T
        words = np.array([0] * (T - length) + [4] * length, np.int32)
        records.append((image, np.zeros((SIZE, SIZE), bool), words, True))
    _write_split(directory, "train", records, num_shards=2)
    write_manifest(directory, SIZE, dataset="shapes", vocab_file="vocab.txt",
                   splits={"train": {"count": 36, "shards": []}})
    return root


def test_length_buckets_cover_every_length_once():
    assert pipeline.length_bucket_boundaries(20) == [3, 5, 7, 9, 11, 13, 15, 17, 19]
    assert pipeline.length_bucket_boundaries(5) == [3, 5]


def test_bucketed_batches_hold_one_bucket_of_lengths_each(mixed_length_dir):
    dataset = pipeline.train_dataset(_cfg(mixed_length_dir), "train", batch_size=3, seed=2,
                                     repeat=False, bucket_by_length=True, **SHAPE)
    batches = list(dataset)
    bucket_of = {1: 0, 2: 0, 3: 1, 4: 1, 5: 2}  # boundaries [3, 5] for T = 5
    for features, _ in batches:
        lengths = np.count_nonzero(features["words"].numpy(), axis=1)
        assert len({bucket_of[n] for n in lengths}) == 1, lengths
    ids = _ids(batches)
    # One epoch: no record twice; whole batches only. The buckets hold 15, 14 and 7
    # records, so 15 + 12 + 6 are batched and each bucket's remainder is dropped.
    assert len(ids) == len(set(ids)) == 33
    mixed = pipeline.train_dataset(_cfg(mixed_length_dir), "train", batch_size=3, seed=2,
                                   repeat=False, **SHAPE)
    assert any(len({bucket_of[n] for n in np.count_nonzero(f["words"].numpy(), axis=1)}) > 1
               for f, _ in mixed)  # without buckets, batches mix lengths


def test_bucketed_stream_is_deterministic_for_a_seed(mixed_length_dir):
    def order(seed):
        return _ids(pipeline.train_dataset(_cfg(mixed_length_dir), "train", batch_size=4,
                                           seed=seed, bucket_by_length=True, **SHAPE).take(12))

    assert order(3) == order(3) != order(4)
