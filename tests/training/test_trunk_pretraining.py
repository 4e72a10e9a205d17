"""Pretraining the small trunk on the synthetic set's per-cell labels, and loading it frozen."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import tiny_model_config
from tests.records import checkpoint_tensors, tiny_run_config
from tf_rmi.training import train_lib, trunk_pretraining
from tf_rmi.data import shapes
from tf_rmi.data.image_ops import resize_and_pad_mask
from tf_rmi.models.trunk import build_trunk
from tf_rmi.training.trunk_pretraining import TrunkPretrainConfig, TrunkPretrainingError

SIZE = 64


def tiny_source():
    return shapes.ShapesSource(seed=3, num_train_images=12, num_val_images=4, num_test_images=1,
                               min_size=SIZE, max_size=80)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """(model config, output directory, trunk.json) of a 60-step pretraining."""
    model_cfg = tiny_model_config(input_size=SIZE, small_trunk_standardize=True,
                                  small_trunk_aligned=True, small_trunk_input_scale=1 / 128)
    out = str(tmp_path_factory.mktemp("trunk") / "pretrained")
    info = trunk_pretraining.pretrain_small_trunk(
        model_cfg, tiny_source(), out,
        TrunkPretrainConfig(steps=60, batch_size=4, learning_rate=3e-3), progress=False)
    return model_cfg, out, info


def test_cell_labels_name_the_object_owning_pixel_8k():
    source = tiny_source()
    scene, image, masks = source._render("train", 0)
    labels = trunk_pretraining.cell_labels(scene, masks, SIZE)
    assert labels.shape == (SIZE // 8, SIZE // 8, 3)
    owner = np.full((SIZE, SIZE), -1)
    for k in range(len(scene.objects)):
        owner[resize_and_pad_mask(masks[k], SIZE)] = k
    sampled = owner[::8, ::8]
    assert (sampled >= 0).any() and (sampled < 0).any()
    assert (labels[sampled < 0] == 0).all()
    for (i, j) in zip(*np.nonzero(sampled >= 0)):
        obj = scene.objects[sampled[i, j]]
        assert labels[i, j, 0] == list(shapes.COLOURS).index(obj.colour) + 1
        assert labels[i, j, 1] == shapes.SHAPES.index(obj.shape) + 1
        assert labels[i, j, 2] == shapes.SIZES.index(obj.size) + 1


def test_pretraining_lowers_the_loss_and_writes_checkpoint_and_info(pretrained):
    _, out, info = pretrained
    assert sorted(os.listdir(out))[:2] == ["trunk.data-00000-of-00001", "trunk.index"]
    with open(os.path.join(out, "trunk.json")) as f:
        assert json.load(f) == json.loads(json.dumps(info))
    assert info["final_loss"] < 0.7 * info["initial_loss"]
    assert set(info["val_accuracy"]) == {"colour", "shape", "size"}
    assert info["train_images"] == 12 and info["val_images"] == 4
    # No temporary directory is left beside the output.
    assert os.listdir(os.path.dirname(out)) == ["pretrained"]


def test_load_restores_the_same_function(pretrained):
    model_cfg, out, info = pretrained
    trunk = build_trunk(model_cfg)
    report = trunk_pretraining.load_small_trunk(trunk, out, model_cfg)
    assert "verified" in report.summary() and report.variables == len(trunk.variables)
    probe = trunk_pretraining.probe_output(trunk)
    assert np.abs(probe).max() > 0.1  # not a statistic that is constant by design
    np.testing.assert_allclose(probe, info["probe_output"], rtol=1e-5, atol=1e-6)


def test_load_refuses_other_trunk_settings(pretrained):
    model_cfg, out, _ = pretrained
    other = tiny_model_config(input_size=SIZE, small_trunk_width=4)
    with pytest.raises(TrunkPretrainingError, match="small_trunk_width: pretrained 8, asked 4"):
        trunk_pretraining.load_small_trunk(build_trunk(other), out, other)


def test_load_refuses_a_directory_without_trunk_json(tmp_path):
    model_cfg = tiny_model_config(input_size=SIZE)
    with pytest.raises(TrunkPretrainingError, match="pretrain_trunk"):
        trunk_pretraining.load_small_trunk(build_trunk(model_cfg), str(tmp_path), model_cfg)


def test_load_refuses_files_that_do_not_belong_together(pretrained, tmp_path):
    model_cfg, out, _ = pretrained
    # trunk.json of the pretrained trunk beside the checkpoint of an untrained one.
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "trunk.json").write_text(open(os.path.join(out, "trunk.json")).read())
    tf.train.Checkpoint(trunk=build_trunk(model_cfg)).write(str(copy / "trunk"))
    with pytest.raises(TrunkPretrainingError, match="do not belong together"):
        trunk_pretraining.load_small_trunk(build_trunk(model_cfg), str(copy), model_cfg)


def test_training_with_a_pretrained_small_trunk_keeps_it_frozen(pretrained, tfrecord_dir,  # noqa: F811
                                                                tmp_path):
    model_cfg, out, _ = pretrained
    config = tiny_run_config(tfrecord_dir, iterations=4, snapshot_every=4, pretrained=out)
    config.model = tiny_model_config(
        vocab_size=0, num_words=config.model.num_words, input_size=SIZE,
        small_trunk_standardize=True, small_trunk_aligned=True, small_trunk_input_scale=1 / 128)
    summary = train_lib.train(config, str(tmp_path), progress=False)
    assert "Loaded the pretrained small trunk" in summary["pretrained"]
    saved = checkpoint_tensors(summary["checkpoint"])
    source = checkpoint_tensors(os.path.join(out, "trunk"))
    trunk_keys = [k for k in source if k.startswith("trunk/")]
    assert trunk_keys
    for key in trunk_keys:  # the trunk is stored under model/trunk/ and never moved
        np.testing.assert_array_equal(saved["model/" + key], source[key])
    # No Adam slots for the trunk: it has no gradients.
    assert not [k for k in saved if k.startswith("optimizer/") and "trunk" in k]


def test_a_pretrained_small_trunk_refuses_a_trunk_learning_rate():
    config = tiny_run_config("records", pretrained="somewhere", trunk_learning_rate_mult=0.1)
    with pytest.raises(ValueError, match="frozen"):
        config.validate()


def test_shapes_source_for_rebuilds_the_recorded_source(tmp_path):
    from tf_rmi.data import preprocess_lib

    args = dict(num_train_images=3, num_val_images=1, num_test_images=0, min_size=SIZE,
                max_size=SIZE, object_scale=1.2)
    preprocess_lib.preprocess("shapes", data_root="", output_dir=str(tmp_path), splits=("train",),
                              image_size=SIZE, seed=5, progress=False, shapes_args=args)
    source = trunk_pretraining.shapes_source_for(str(tmp_path))
    assert source.seed == 5 and source.image_counts == {"train": 3, "val": 1, "test": 0}
    assert (source.min_size, source.max_size, source.object_scale) == (SIZE, SIZE, 1.2)


def test_entry_point_pretrains_from_the_records_manifest_and_reports_bad_input(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT
    from tf_rmi.data import preprocess_lib

    def run(*args):
        return subprocess.run([sys.executable, "-m", "tf_rmi.pretrain_trunk", *args],
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)

    missing = run(f"--tfrecord_dir={tmp_path / 'nothing'}", f"--output_dir={tmp_path / 'out'}")
    assert missing.returncode != 0 and "Traceback" not in missing.stderr
    assert "pretrain_trunk: " in missing.stderr and "manifest" in missing.stderr
    preprocess_lib.preprocess("shapes", data_root="", output_dir=str(tmp_path / "records"),
                              splits=("train",), image_size=SIZE, seed=2, progress=False,
                              shapes_args=dict(num_train_images=3, num_val_images=2,
                                               num_test_images=0, min_size=SIZE, max_size=SIZE))
    done = run(f"--tfrecord_dir={tmp_path / 'records'}", f"--output_dir={tmp_path / 'out'}",
               f"--input_size={SIZE}", "--small_trunk_width=4", "--steps=3", "--batch_size=2")
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.load(open(tmp_path / "out" / "trunk.json"))
    assert info["train_images"] == 3 and info["val_images"] == 2
    assert info["settings"]["small_trunk_width"] == 4
