"""tf_rmi.data.shards: shard file names, their parsing and listing, and the manifest file."""
import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT, checkout_env
from tf_rmi.data import shards


@pytest.mark.parametrize("split,index,total", [("train", 0, 1), ("val", 3, 12),
                                               ("testA", 99998, 99999),
                                               ("odd-name-00001-of-00002", 1, 2)])
def test_names_round_trip_through_the_regex(split, index, total):
    name = shards.shard_name(split, index, total)
    assert name == f"{split}-{index:05d}-of-{total:05d}.tfrecord"
    assert shards.parse_shard_name(name) == (split, index, total, False)
    temporary = os.path.basename(shards.temporary_path(os.path.join("d", name), pid=4321))
    assert temporary == name + ".tmp-4321"
    assert shards.parse_shard_name(temporary) == (split, index, total, True)


def test_temporary_path_defaults_to_this_process():
    assert shards.temporary_path("x.tfrecord") == f"x.tfrecord.tmp-{os.getpid()}"


@pytest.mark.parametrize("name", ["manifest.json", "vocabulary.txt", "train-0-of-1.tfrecord",
                                  "train-00000-of-00001.tfrecord.tmp-", "train-00000-of-00001",
                                  "train-00000-of-00001.tfrecord.bak",
                                  "-00000-of-00001.tfrecord"])
def test_other_files_are_not_shards(name):
    assert shards.parse_shard_name(name) is None


def _touch(directory, *names):
    os.makedirs(directory, exist_ok=True)
    for name in names:
        open(os.path.join(directory, name), "wb").close()


def test_a_splits_shards_are_listed_in_order(tmp_path):
    directory = str(tmp_path / "tiny")
    names = [shards.shard_name("train", i, 12) for i in range(12)]
    _touch(directory, *reversed(names), shards.shard_name("val", 0, 1),
           shards.shard_name("train", 2, 12) + ".tmp-77", "manifest.json")
    paths = shards.shard_paths(str(tmp_path), "tiny", "train")
    assert paths == [os.path.join(directory, n) for n in names]  # 00010 after 00009
    listed = shards.split_files(directory, "train")
    assert sorted(listed) == sorted(names + [names[2] + ".tmp-77"])
    assert [n for n, p in listed.items() if p.temporary] == [names[2] + ".tmp-77"]
    assert shards.shard_paths(str(tmp_path), "tiny", "val") == [
        os.path.join(directory, "val-00000-of-00001.tfrecord")]


def test_a_split_whose_name_prefixes_another_is_kept_apart(tmp_path):
    _touch(str(tmp_path / "tiny"), shards.shard_name("train", 0, 1),
           shards.shard_name("trainval", 0, 2), shards.shard_name("trainval", 1, 2))
    assert len(shards.shard_paths(str(tmp_path), "tiny", "train")) == 1
    assert len(shards.shard_paths(str(tmp_path), "tiny", "trainval")) == 2


def test_a_missing_split_gives_the_clear_error(tmp_path):
    _touch(str(tmp_path / "tiny"), shards.shard_name("train", 0, 1),
           shards.shard_name("testA", 0, 1) + ".tmp-5")  # only a temporary: not written
    for split in ("testA", "val"):
        with pytest.raises(FileNotFoundError,
                           match=rf"No TFRecord shards for split '{split}'.*make preprocess "
                                 rf"DATASET=tiny SPLITS={split}"):
            shards.shard_paths(str(tmp_path), "tiny", split)
    with pytest.raises(FileNotFoundError, match="make preprocess"):
        shards.shard_paths(str(tmp_path), "nosuch", "train")  # no dataset directory
    assert shards.split_files(str(tmp_path / "nosuch"), "train") == {}


def test_an_incomplete_split_is_reported(tmp_path):
    _touch(str(tmp_path / "tiny"), shards.shard_name("train", 0, 3), shards.shard_name("train", 2, 3))
    with pytest.raises(ValueError, match=r"Incomplete shards for split 'train'.*\[0, 2\]"):
        shards.shard_paths(str(tmp_path), "tiny", "train")


def test_manifest_read_strictly_or_leniently(tmp_path):
    directory = str(tmp_path / "tiny")
    with pytest.raises(FileNotFoundError, match="No manifest at .*make preprocess"):
        shards.read_manifest(str(tmp_path), "tiny")
    assert shards.manifest_or_none(str(tmp_path), "tiny") is None
    assert shards.manifest_to_update(directory) == {}
    assert shards.largest_shard(str(tmp_path), "tiny", "train") == 0
    assert shards.training_order(str(tmp_path), "tiny") is None

    manifest = {"settings": {"train_order": "random"},
                "splits": {"train": {"shards": [{"records": 7}, {"records": 9}, {}]}}}
    os.makedirs(directory)
    path = shards.write_manifest(directory, manifest)
    assert path == os.path.join(directory, shards.MANIFEST_NAME)
    with open(path) as f:
        assert json.load(f) == manifest
    for read in (shards.read_manifest(str(tmp_path), "tiny"),
                 shards.manifest_or_none(str(tmp_path), "tiny"),
                 shards.manifest_to_update(directory)):
        assert read == manifest
    assert shards.largest_shard(str(tmp_path), "tiny", "train") == 9
    assert shards.training_order(str(tmp_path), "tiny") == "random"

    with open(path, "w") as f:
        f.write("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        shards.read_manifest(str(tmp_path), "tiny")
    assert shards.manifest_to_update(directory) == {}  # the writer rebuilds
    with open(path, "w") as f:
        json.dump([1, 2], f)
    with pytest.raises(ValueError, match="must hold a JSON object"):
        shards.read_manifest(str(tmp_path), "tiny")
    assert shards.manifest_to_update(directory) == {}


def test_an_unwritable_manifest_names_the_path_and_the_fix(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="Cannot write .*manifest.json.*make the location writable"):
        shards.write_manifest(str(blocker / "tiny"), {})


def test_the_writer_and_the_readers_share_this_module():
    from tf_rmi.data import pipeline, preprocess_lib

    # The writer names shards through shards.py, never through the tf.data reader.
    assert "pipeline" not in vars(preprocess_lib)
    assert preprocess_lib.shards is shards
    assert pipeline.shard_paths is shards.shard_paths and pipeline.shard_name is shards.shard_name


def test_no_tensorflow_import():
    code = "import sys, tf_rmi.data.shards; assert 'tensorflow' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO_ROOT,
                   env=checkout_env(), timeout=120)
