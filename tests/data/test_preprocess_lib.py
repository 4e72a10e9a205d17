"""Preprocessing: raw fixtures -> sharded TFRecords -> parsed back."""
import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tf_rmi.data import image_ops, pipeline, preprocess_lib, refer, referit, schema, text
from tf_rmi.data.shapes import ShapesSource
from tf_rmi.data.sources import DataError, Expression, Source
from tests.conftest import shared_path
from tests.data import refer_fixtures as fixtures

WORDS = ["<pad>", "<go>", "<eos>", "<unk>", "red", "box", "left", "the", "gray", "thing"]


class TinySource(Source):
    """Deterministic in-memory source: `num` expressions, two per image."""

    name = "tiny"
    vocab_name = None

    def __init__(self, num=12):
        self.num = num

    def splits(self):
        return ("train", "val")

    def expressions(self, split):
        return [Expression(image_id=str(i // 2), ref_id=str(i // 2), ann_id=str(i // 2),
                           sent_id=str(i), sentence=["red box", "the left thing"][i % 2],
                           split=split) for i in range(self.num)]

    def load_image(self, expr):
        return fixtures.gradient_image(12, 16, 3, seed=int(expr.image_id))

    def load_mask(self, expr):
        k = int(expr.image_id) % 4
        return fixtures.rect_mask(12, 16, (k, k, k + 6, k + 5))


def read_records(paths):
    return [schema.parse_example(r) for r in tf.data.TFRecordDataset(paths)]


def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
def vocab():
    return text.Vocabulary(WORDS)


@pytest.fixture
def gref_vocab_file():
    return shared_path("vocab", "vocabulary_Gref.txt")


# ---------------------------------------------------------------------------
# Round trip on the REFER fixture


@pytest.fixture(scope="module")
def refer_build(tmp_path_factory):
    """The clean REFER fixture written at the paper's 320 (train) and original size (val)."""
    vocab_file = shared_path("vocab", "vocabulary_Gref.txt")
    root = str(tmp_path_factory.mktemp("raw"))
    expected = fixtures.write_refer(root)
    out = str(tmp_path_factory.mktemp("out"))
    source = refer.ReferSource(root, "unc")
    stats = preprocess_lib.build_dataset(source, out, splits=["train", "val"],
                                         vocab_file=vocab_file, num_workers=1,
                                         progress=False)
    return source, expected, out, stats, text.Vocabulary.from_file(vocab_file)


def test_training_records_are_resized_and_padded_to_320(refer_build):
    source, expected, out, _, vocab = refer_build
    records = read_records(pipeline.shard_paths(out, "unc", "train"))
    exprs = source.expressions("train")
    assert len(records) == len(exprs) == 3
    # Training records are written in the seeded permutation of the source's order.
    exprs = [exprs[i] for i in preprocess_lib.training_permutation(len(exprs))]
    for record, expr in zip(records, exprs):
        assert bool(record["padded"])
        assert record["image"].shape == (320, 320, 3)
        np.testing.assert_array_equal(record["image"].numpy(),
                                      image_ops.resize_and_pad(source.load_image(expr), 320))
        np.testing.assert_array_equal(
            record["mask"].numpy(),
            image_ops.resize_and_pad_mask(expected["masks"][int(expr.ann_id)], 320))
        np.testing.assert_array_equal(record["words"].numpy(), vocab.encode(expr.sentence, 20))
        assert record["sentence"].numpy().decode("utf-8") == expr.sentence
        assert (int(record["orig_height"]), int(record["orig_width"])) == \
            expected["sizes"][int(expr.image_id)]
        assert record["sent_id"].numpy().decode() == expr.sent_id


def test_evaluation_records_keep_the_original_image_and_mask(refer_build):
    source, expected, out, _, _ = refer_build
    records = read_records(pipeline.shard_paths(out, "unc", "val"))
    assert len(records) == 2
    for record, expr in zip(records, source.expressions("val")):
        assert not bool(record["padded"])
        np.testing.assert_array_equal(record["image"].numpy(), source.load_image(expr))
        np.testing.assert_array_equal(record["mask"].numpy(), expected["masks"][103])


def test_grayscale_images_are_stored_as_rgb(refer_build):
    source, _, out, _, _ = refer_build
    gray_expr = source.expressions("train")[2]
    gray = source.load_image(gray_expr)
    assert gray.ndim == 2
    record, = [r for r in read_records(pipeline.shard_paths(out, "unc", "train"))
               if r["sent_id"].numpy().decode() == gray_expr.sent_id]
    image = record["image"].numpy()
    np.testing.assert_array_equal(image[..., 0], image[..., 1])
    np.testing.assert_array_equal(image, image_ops.resize_and_pad(np.stack([gray] * 3, -1)))


def test_manifest_records_counts_vocabulary_settings_and_checksums(refer_build):
    _, _, out, stats, _ = refer_build
    with open(os.path.join(out, "unc", "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["dataset"] == "unc"
    assert os.path.basename(manifest["vocab_file"]) == "vocabulary_Gref.txt"
    assert manifest["settings"]["image_size"] == 320
    assert manifest["settings"]["num_words"] == 20
    for split, count in (("train", 3), ("val", 2)):
        entry = manifest["splits"][split]
        assert entry["count"] == count == stats[split].count
        assert entry["complete"] and entry["skipped"] == {}
        assert sum(s["records"] for s in entry["shards"]) == count
        for shard in entry["shards"]:
            assert sha256(os.path.join(out, "unc", shard["file"])) == shard["sha256"]


def test_pipeline_reads_the_written_dataset(refer_build):
    from tf_rmi.config import DataConfig

    _, _, out, _, _ = refer_build
    cfg = DataConfig(dataset="unc", tfrecord_dir=out)
    assert pipeline.count_records(cfg, "train") == 3
    assert os.path.basename(pipeline.resolve_vocab_file(cfg)) == "vocabulary_Gref.txt"
    (inputs, masks), = pipeline.train_dataset(cfg, "train", batch_size=3, seed=0,
                                              repeat=False, input_size=320, num_words=20).take(1)
    assert inputs["images"].shape == (3, 320, 320, 3) and masks.shape == (3, 320, 320, 1)


# ---------------------------------------------------------------------------
# Bad input


def test_bad_samples_are_skipped_and_counted_by_reason(tmp_path, gref_vocab_file):
    root = str(tmp_path / "raw")
    fixtures.write_refer(root, bad=True)
    stats = preprocess_lib.build_dataset(
        refer.ReferSource(root, "unc"), str(tmp_path / "out"), splits=["train"],
        vocab_file=gref_vocab_file, image_size=8, num_workers=1, progress=False)["train"]
    assert stats.skipped == {"missing_image": 1, "unreadable_image": 1,
                             "missing_annotation": 1, "empty_sentence": 1, "empty_mask": 2}
    assert stats.count == 4  # refs 1 (x2) and 2, and ref 13's good sentence
    sent_ids = [r["sent_id"].numpy().decode()
                for r in read_records(pipeline.shard_paths(str(tmp_path / "out"), "unc", "train"))]
    assert sorted(sent_ids) == ["10", "11", "131", "20"]
    assert "COCO_train2014_000000000010.jpg" in stats.skip_examples["missing_image"]


class DotSource(TinySource):
    """32x32 images whose mask is pixel (0, 0) only: resizing 32 -> 8 samples
    input positions 4x + 1.5, which never read row or column 0."""

    def load_image(self, expr):
        return fixtures.gradient_image(32, 32, 3)

    def load_mask(self, expr):
        return fixtures.rect_mask(32, 32, (0, 0, 1, 1))


def test_mask_vanishing_in_the_resize_is_skipped_only_in_training_splits(tmp_path):
    stats = preprocess_lib.build_dataset(DotSource(2), str(tmp_path), build_vocab=True,
                                         image_size=8, num_workers=1, progress=False)
    assert (stats["train"].count, stats["train"].skipped) == (0, {"empty_mask": 2})
    assert (stats["val"].count, stats["val"].skipped) == (2, {})


def test_strict_mode_raises_the_first_bad_sample_naming_the_file(tmp_path, gref_vocab_file):
    root = str(tmp_path / "raw")
    fixtures.write_refer(root, bad=True)
    out = tmp_path / "out"
    with pytest.raises(DataError) as info:
        preprocess_lib.build_dataset(refer.ReferSource(root, "unc"), str(out),
                                     splits=["train"], vocab_file=gref_vocab_file,
                                     image_size=8, num_workers=1, strict=True, progress=False,
                                     train_order="file")  # errors in source order
    assert info.value.reason == "missing_image"
    assert info.value.path.endswith("COCO_train2014_000000000010.jpg")
    assert not [n for n in os.listdir(out / "unc") if ".tmp" in n or n.endswith(".tfrecord")]


def test_strict_mode_with_workers_raises_the_same_first_error(tmp_path, gref_vocab_file):
    root = str(tmp_path / "raw")
    fixtures.write_refer(root, bad=True)
    with pytest.raises(DataError) as info:
        preprocess_lib.build_dataset(refer.ReferSource(root, "unc"), str(tmp_path / "out"),
                                     splits=["train"], vocab_file=gref_vocab_file,
                                     image_size=8, num_shards=4, num_workers=2, strict=True,
                                     progress=False, train_order="file")
    assert info.value.reason == "missing_image"
    assert info.value.path.endswith("COCO_train2014_000000000010.jpg")


def test_missing_data_root_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent"):
        preprocess_lib.preprocess("referit", str(tmp_path / "absent"), str(tmp_path / "out"))


def _manifest(out, dataset):
    with open(os.path.join(out, dataset, "manifest.json")) as f:
        return json.load(f)


@pytest.mark.parametrize("name", ["vocabulary_Gref.txt", "vocabulary_referit.txt"])
def test_packaged_vocabularies_are_the_original_files(name):
    packaged = preprocess_lib.packaged_vocab_file(name)
    assert packaged and packaged.startswith(os.path.dirname(preprocess_lib.__file__))
    assert sha256(packaged) == sha256(shared_path("vocab", name))


def test_packaged_vocabulary_is_used_when_data_root_has_none(tmp_path):
    root = str(tmp_path / "referit")
    fixtures.write_referit(root)
    out = str(tmp_path / "out")
    stats = preprocess_lib.preprocess("referit", root, out, splits=["test"], num_workers=1,
                                      progress=False)
    manifest = _manifest(out, "referit")
    assert manifest["vocab_file"] == preprocess_lib.packaged_vocab_file("vocabulary_referit.txt")
    assert manifest["vocab_size"] == 8803
    record, = read_records(pipeline.shard_paths(out, "referit", "test"))
    vocab = text.Vocabulary.from_file(manifest["vocab_file"])
    np.testing.assert_array_equal(record["words"].numpy(), vocab.encode("middle thing", 20))
    assert stats["test"].count == 1


def test_vocab_file_flag_overrides_the_packaged_vocabulary(tmp_path, vocab):
    root = str(tmp_path / "referit")
    fixtures.write_referit(root)
    mine = str(tmp_path / "mine.txt")
    text.write_vocabulary(WORDS, mine)
    out = str(tmp_path / "out")
    preprocess_lib.preprocess("referit", root, out, splits=["test"], vocab_file=mine,
                              num_workers=1, progress=False)
    assert _manifest(out, "referit")["vocab_file"] == os.path.abspath(mine)
    assert _manifest(out, "referit")["vocab_size"] == len(WORDS)


def test_missing_vocabulary_everywhere_asks_for_the_flag(tmp_path, monkeypatch):
    fixtures.write_referit(str(tmp_path))
    monkeypatch.setattr(preprocess_lib, "PACKAGED_VOCAB_DIR", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="--vocab_file"):
        preprocess_lib.preprocess("referit", str(tmp_path), str(tmp_path / "out"))


def test_unknown_split_is_refused(tmp_path):
    with pytest.raises(ValueError, match="testA"):
        preprocess_lib.build_dataset(TinySource(), str(tmp_path), splits=["testA"],
                                     build_vocab=True, progress=False)


# ---------------------------------------------------------------------------
# Resuming and determinism


def test_rerun_after_interruption_writes_only_the_missing_shard(tmp_path, vocab):
    out = str(tmp_path / "tiny")
    source = TinySource(12)
    first = preprocess_lib.build_split(source, "train", vocab, out, num_shards=3,
                                       num_workers=1, image_size=16, progress=False)
    names = [s["file"] for s in first.shards]
    os.remove(os.path.join(out, names[1]))
    stale = os.path.join(out, names[0] + ".tmp-12345")
    with open(stale, "wb") as f:
        f.write(b"half a shard")
    for name in (names[0], names[2]):
        os.utime(os.path.join(out, name), ns=(10**18, 10**18))
    second = preprocess_lib.build_split(source, "train", vocab, out, num_shards=3,
                                        num_workers=1, image_size=16, progress=False)
    assert (second.written_shards, second.reused_shards) == (1, 2)
    assert not os.path.exists(stale)
    for name in (names[0], names[2]):
        assert os.stat(os.path.join(out, name)).st_mtime_ns == 10**18
    records = read_records(pipeline.shard_paths(str(tmp_path), "tiny", "train"))
    sent_ids = [r["sent_id"].numpy().decode() for r in records]
    assert sent_ids == [str(i) for i in preprocess_lib.training_permutation(12)]
    assert second.count == first.count == 12


def test_rerun_rewrites_a_shard_whose_checksum_changed(tmp_path, vocab):
    out = str(tmp_path)
    first = preprocess_lib.build_split(TinySource(8), "val", vocab, out, num_shards=2,
                                       num_workers=1, progress=False)
    path = os.path.join(out, first.shards[0]["file"])
    with open(path, "ab") as f:
        f.write(b"garbage")
    second = preprocess_lib.build_split(TinySource(8), "val", vocab, out, num_shards=2,
                                        num_workers=1, progress=False)
    assert second.written_shards == 1
    assert sha256(path) == first.shards[0]["sha256"]


def test_changed_shard_count_replaces_the_old_shards(tmp_path, vocab):
    out = str(tmp_path)
    preprocess_lib.build_split(TinySource(8), "val", vocab, out, num_shards=3, num_workers=1,
                               progress=False)
    preprocess_lib.build_split(TinySource(8), "val", vocab, out, num_shards=2, num_workers=1,
                               progress=False)
    assert sorted(n for n in os.listdir(out) if n.endswith(".tfrecord")) == [
        "val-00000-of-00002.tfrecord", "val-00001-of-00002.tfrecord"]


def test_other_settings_in_the_same_directory_are_refused(tmp_path, vocab):
    out = str(tmp_path)
    preprocess_lib.build_split(TinySource(4), "train", vocab, out, num_shards=1,
                               num_workers=1, image_size=16, progress=False)
    with pytest.raises(ValueError, match="image_size"):
        preprocess_lib.build_split(TinySource(4), "train", vocab, out, num_shards=1,
                                   num_workers=1, image_size=24, progress=False)


def test_output_is_byte_identical_across_runs_and_worker_counts(tmp_path, vocab):
    source = TinySource(12)
    one = preprocess_lib.build_split(source, "train", vocab, str(tmp_path / "a"),
                                     num_shards=3, num_workers=1, image_size=16,
                                     progress=False)
    two = preprocess_lib.build_split(source, "train", vocab, str(tmp_path / "b"),
                                     num_shards=3, num_workers=2, image_size=16,
                                     progress=False)
    for a, b in zip(one.shards, two.shards):
        with open(tmp_path / "a" / a["file"], "rb") as fa, \
                open(tmp_path / "b" / b["file"], "rb") as fb:
            assert fa.read() == fb.read()
    assert [s["records"] for s in one.shards] == [4, 4, 4]


def test_output_does_not_depend_on_the_chunk_size(tmp_path, vocab):
    # Chunks of one record, finished by two workers in any order, must give
    # the bytes of whole-shard chunks written in order.
    source = TinySource(12)
    whole = preprocess_lib.build_split(source, "train", vocab, str(tmp_path / "a"),
                                       num_shards=3, num_workers=1, image_size=16,
                                       progress=False, chunk_size=100)
    small = preprocess_lib.build_split(source, "train", vocab, str(tmp_path / "b"),
                                       num_shards=3, num_workers=2, image_size=16,
                                       progress=False, chunk_size=1)
    assert [s["sha256"] for s in whole.shards] == [s["sha256"] for s in small.shards]
    for a, b in zip(whole.shards, small.shards):
        assert sha256(str(tmp_path / "a" / a["file"])) == sha256(str(tmp_path / "b" / b["file"]))


def test_chunks_never_split_the_sentences_of_one_ref():
    refs = [0, 0, 0, 1, 2, 2, 2, 2, 3, 4]
    ranges = preprocess_lib.chunk_ranges(len(refs), 2, lambda i, j: refs[i] == refs[j])
    assert ranges == [(0, 3), (3, 8), (8, 10)]
    cuts = [lo for lo, _ in ranges[1:]]
    assert all(refs[c - 1] != refs[c] for c in cuts)
    assert preprocess_lib.chunk_ranges(5, 2) == [(0, 2), (2, 4), (4, 5)]


# ---------------------------------------------------------------------------
# The entry point (in a subprocess: its absl flags would collide with other
# entry points' flags in this process)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _build_data(*args):
    return subprocess.run([sys.executable, "-m", "preprocess.build_data", *args],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)


def test_entry_point_writes_the_requested_splits(tmp_path):
    fixtures.write_referit(str(tmp_path / "referit"))
    vocab_file = shared_path("vocab", "vocabulary_referit.txt")
    done = _build_data("--dataset=referit", f"--data_root={tmp_path / 'referit'}",
                       f"--output_dir={tmp_path / 'out'}", "--splits=test",
                       f"--vocab_file={vocab_file}", "--num_workers=1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Wrote 1 records of referit (test)" in done.stdout
    assert pipeline.shard_paths(str(tmp_path / "out"), "referit", "test")


def test_entry_point_reports_a_missing_data_root_without_traceback(tmp_path):
    done = _build_data("--dataset=unc", f"--data_root={tmp_path / 'nowhere'}",
                       f"--output_dir={tmp_path / 'out'}")
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert f"build_data: REFER data root {tmp_path / 'nowhere'} does not exist" in done.stderr


# ---------------------------------------------------------------------------
# Vocabulary and the other sources


def test_built_vocabulary_is_written_beside_the_records(tmp_path):
    source = ShapesSource(seed=3, num_train_images=2, num_val_images=1, num_test_images=0)
    stats = preprocess_lib.build_dataset(source, str(tmp_path), splits=["val"],
                                         num_workers=1, progress=False, settings={"seed": 3})
    directory = tmp_path / "shapes"
    tokens = text.read_vocabulary_lines(str(directory / "vocabulary.txt"))
    # The synthetic set's vocabulary is its grammar's (the same for every seed),
    # not counted from the draw's training split.
    from tf_rmi.data.shapes import vocabulary_tokens
    assert tokens == vocabulary_tokens()
    sentences = [e.sentence for e in source.expressions("train")]
    assert set(text.build_vocabulary(sentences)) <= set(tokens)
    with open(directory / "manifest.json") as f:
        manifest = json.load(f)
    assert manifest["vocab_file"] == "vocabulary.txt"
    assert manifest["settings"]["vocab_built_from"] == "grammar"
    assert manifest["settings"]["seed"] == 3
    assert stats["val"].count == len(source.expressions("val"))


def test_referit_through_the_entry_point_library(tmp_path):
    root = tmp_path / "referit"
    fixtures.write_referit(str(root))
    shutil.copy(shared_path("vocab", "vocabulary_referit.txt"), tmp_path)
    stats = preprocess_lib.preprocess("referit", str(root), str(tmp_path / "out"),
                                  splits=["trainval", "test"], image_size=16, num_workers=1,
                                  progress=False)
    assert (stats["trainval"].count, stats["test"].count) == (4, 1)
    with open(tmp_path / "out" / "referit" / "manifest.json") as f:
        assert json.load(f)["vocab_file"] == str(tmp_path / "vocabulary_referit.txt")
    test_record, = read_records(pipeline.shard_paths(str(tmp_path / "out"), "referit", "test"))
    assert test_record["image"].shape == (12, 20, 3)


def test_real_referit_queries_without_images_are_counted_skips(tmp_path):
    real = shared_path("referit", "referit_query_val.json")
    shutil.copy(real, tmp_path / "referit_query_val.json")
    source = referit.ReferItSource(str(tmp_path))
    vocab = text.Vocabulary.from_file(shared_path("vocab", "vocabulary_referit.txt"))
    stats = preprocess_lib.build_split(source, "val", vocab, str(tmp_path / "out"),
                                       num_shards=2, num_workers=1, progress=False)
    assert stats.count == 0
    assert sum(stats.skipped.values()) == stats.expressions == len(source.expressions("val"))
    assert stats.skipped["missing_image"] > 1000


def test_group_by_image_makes_each_image_consecutive_and_is_stable():
    from tf_rmi.data.preprocess_lib import group_by_image
    from tf_rmi.data.sources import Expression

    def expr(image, ref):
        return Expression(image, ref, ref, ref + "-s", "a sentence", "val")

    refs = [expr("b", "1"), expr("a", "2"), expr("b", "3"), expr("c", "4"), expr("a", "5")]
    grouped = group_by_image(refs)
    assert [e.ref_id for e in grouped] == ["1", "3", "2", "5", "4"]


# ---------------------------------------------------------------------------
# Degenerate samples: scored on evaluation splits, as the original


class DegenerateSource(TinySource):
    """Images 0-2, two sentences each: image 0's mask is empty, image 1's mask is
    10x16 for a 12x16 image, image 2 is normal."""

    def load_mask(self, expr):
        k = int(expr.image_id)
        if k == 0:
            return np.zeros((12, 16), bool)
        if k == 1:
            return fixtures.rect_mask(10, 16, (2, 2, 9, 8))
        return super().load_mask(expr)


def test_degenerate_samples_are_kept_on_evaluation_splits_and_counted(tmp_path):
    stats = preprocess_lib.build_dataset(DegenerateSource(6), str(tmp_path), build_vocab=True,
                                         image_size=16, num_workers=1, progress=False)
    train, val = stats["train"], stats["val"]
    assert (train.count, train.skipped) == (2, {"empty_mask": 2, "mask_size_mismatch": 2})
    assert train.degenerate_records == 0
    assert (val.count, val.skipped) == (6, {})
    assert val.degenerate == {"empty_mask": 2, "mask_size_mismatch": 2}
    assert val.degenerate_records == 4
    assert "scored but degenerate: 4 (empty_mask 2, mask_size_mismatch 2)" in val.summary()
    entry = _manifest(str(tmp_path), "tiny")["splits"]["val"]
    assert (entry["degenerate"], entry["degenerate_records"]) == (val.degenerate, 4)
    records = read_records(pipeline.shard_paths(str(tmp_path), "tiny", "val"))
    by_image = {r["image_id"].numpy().decode(): r for r in records}
    assert by_image["0"]["degenerate"].numpy() == b"empty_mask"
    assert not by_image["0"]["mask"].numpy().any()
    assert by_image["1"]["degenerate"].numpy() == b"mask_size_mismatch"
    # The mask keeps its own size; the image its own (the original scores at the mask's).
    assert by_image["1"]["mask"].shape == (10, 16) and by_image["1"]["image"].shape == (12, 16, 3)
    assert by_image["2"]["degenerate"].numpy() == b""


def _build_refer_train_with_edited_instances(tmp_path, vocab_file, edit):
    """Writes the REFER fixture under <tmp_path>/raw, lets `edit(instances)`
    change its instances.json in place, and builds the unc train split; returns
    (fixture, stats, out dir)."""
    root = str(tmp_path / "raw")
    expected = fixtures.write_refer(root)
    path = os.path.join(root, "refcoco", "instances.json")
    with open(path) as f:
        instances = json.load(f)
    edit(instances)
    with open(path, "w") as f:
        json.dump(instances, f)
    out = str(tmp_path / "out")
    stats = preprocess_lib.build_dataset(refer.ReferSource(root, "unc"), out, splits=["train"],
                                         vocab_file=vocab_file, num_workers=1,
                                         progress=False)["train"]
    return expected, stats, out


def test_refer_masks_are_decoded_at_the_image_file_size(tmp_path, gref_vocab_file):
    """The original decodes polygons at `im.shape`: instances.json's size is not used."""
    def misstate_size(instances):
        for image in instances["images"]:
            if image["id"] == 1:
                image["height"], image["width"] = 30, 40  # the file is 24x32

    expected, stats, out = _build_refer_train_with_edited_instances(
        tmp_path, gref_vocab_file, misstate_size)
    assert stats.skipped == {} and stats.degenerate_records == 0
    for record in read_records(pipeline.shard_paths(out, "unc", "train")):
        if record["ann_id"].numpy() == b"101":
            np.testing.assert_array_equal(record["mask"].numpy(),
                                          image_ops.resize_and_pad_mask(expected["masks"][101],
                                                                        320))


def test_short_polygons_are_decoded_as_pycocotools_and_counted(tmp_path, gref_vocab_file):
    from pycocotools import mask as cocomask

    def shorten_a_part(instances):
        for ann in instances["annotations"]:
            if ann["id"] == 101:  # train ref 1, two sentences
                ann["segmentation"] = [fixtures.rect_polygon(2, 3, 10, 8), [20, 10, 30, 20]]

    _, stats, out = _build_refer_train_with_edited_instances(tmp_path, gref_vocab_file,
                                                             shorten_a_part)
    assert stats.count == 3 and stats.degenerate == {"short_polygon": 2}
    assert "kept but degenerate: 2 (short_polygon 2)" in stats.summary()
    # pycocotools reads the 4-coordinate part as a polygon (it follows a longer
    # first part) and draws nothing for it.
    direct = np.max(cocomask.decode(cocomask.frPyObjects(
        [fixtures.rect_polygon(2, 3, 10, 8), [20, 10, 30, 20]], 24, 32)), axis=2) > 0
    source = refer.ReferSource(str(tmp_path / "raw"), "unc")  # the helper's fixture
    expr = [e for e in source.expressions("train") if e.ann_id == "101"][0]
    np.testing.assert_array_equal(source.load_mask(expr), direct)
    assert source.mask_notes(expr) == ["short_polygon"]
