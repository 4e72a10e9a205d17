"""Evaluation end to end on a tiny model and hand-written records."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT, decisive_tiny_model, tiny_model_config
from tests.records import make_record, write_run, write_shards
from tf_rmi.evaluation import eval_lib
from tf_rmi.config import DataConfig, EvalConfig, RunConfig
from tf_rmi.data import pipeline, schema

NUM_WORDS = 6


def _write_eval_split(root, dataset="tiny", split="val", empty_mask_copy=False):
    """3 images of different sizes with 3, 1 and 2 expressions, grouped by image.

    With `empty_mask_copy`, a 7th record repeats the first one's image and words
    with an empty mask, flagged degenerate as preprocessing flags it."""
    rng = np.random.RandomState(0)
    examples = []
    sizes = [(50, 70), (64, 64), (90, 40)]
    counts = [3, 1, 2]
    for k, ((h, w), n) in enumerate(zip(sizes, counts)):
        image = rng.randint(0, 255, (h, w, 3)).astype(np.uint8)
        for j in range(n):
            mask = np.zeros((h, w), np.uint8)
            mask[5 + 3 * j:25 + 3 * j, 10:30] = 1
            words = np.zeros(NUM_WORDS, np.int64)
            words[-(j + 2):] = rng.randint(1, 40, j + 2)
            sentence = " ".join(["word"] * (j + 2 + 3 * k))
            examples.append(make_record(image, mask, words, sentence, f"img{k}", f"ref{k}-{j}",
                                        f"ann{k}-{j}", f"s{k}-{j}", padded=False))
    if empty_mask_copy:
        first = tf.train.Example.FromString(examples[0].SerializeToString())
        feature = first.features.feature
        h, w = sizes[0]
        feature[schema.MASK_KEY].bytes_list.value[0] = schema.encode_mask_png(
            np.zeros((h, w), np.uint8))
        feature[schema.IMAGE_ID_KEY].bytes_list.value[0] = b"img-copy"
        feature[schema.DEGENERATE_KEY].bytes_list.value.append(b"empty_mask")
        examples.append(first)
    return write_shards(os.path.join(root, dataset), split, examples)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("records"))
    count = _write_eval_split(root)
    cfg = tiny_model_config(num_words=NUM_WORDS)
    model = decisive_tiny_model(cfg)
    run_config = RunConfig(data=DataConfig(dataset="tiny", tfrecord_dir=root), model=cfg)
    return root, count, model, run_config


def test_results_files_and_metrics_are_written(setup, tmp_path):
    root, count, model, run_config = setup
    out_dir = str(tmp_path / "results")
    results = eval_lib.evaluate(model, run_config, EvalConfig(split="val"), out_dir=out_dir,
                                progress=False)
    assert results["expressions"] == count
    saved = json.load(open(os.path.join(out_dir, "results.json")))
    assert saved["raw"]["overall_iou"] == pytest.approx(results["raw"]["overall_iou"])
    assert 0.0 <= saved["raw"]["overall_iou"] <= 1.0
    assert sum(g["count"] for g in saved["raw"]["length_groups"]) == count
    assert "overall IoU" in open(os.path.join(out_dir, "results.md")).read()
    assert saved["crf"] is None


def test_shared_trunk_and_per_expression_give_identical_metrics(setup):
    root, _, model, run_config = setup
    shared = eval_lib.evaluate(model, run_config, EvalConfig(split="val", crf=True),
                               progress=False)
    single = eval_lib.evaluate(model, run_config,
                               EvalConfig(split="val", crf=True, shared_trunk=False),
                               progress=False)
    assert shared["crf"] is not None
    for key in ("raw", "crf", "length_group_bounds"):
        assert shared[key] == single[key]


def test_crf_scores_do_not_depend_on_the_number_of_crf_workers(setup):
    # Two worker processes finish in any order; the scores must be added in
    # the records' order, as with the CRF in this process.
    _, _, model, run_config = setup
    here = eval_lib.evaluate(model, run_config, EvalConfig(split="val", crf=True, crf_workers=1,
                                                           visualize=6), progress=False)
    pool = eval_lib.evaluate(model, run_config, EvalConfig(split="val", crf=True, crf_workers=2,
                                                           visualize=6), progress=False)
    assert here["crf"] == pool["crf"] and here["raw"] == pool["raw"]
    assert here["per_expression"] == pool["per_expression"]


def test_eval_records_keep_original_sizes_and_the_model_sees_the_padded_input(setup):
    root, _, model, run_config = setup
    runner = eval_lib.ModelRunner(model)
    records = list(pipeline.eval_dataset(run_config.data, "val",
                                         num_words=run_config.model.num_words).as_numpy_iterator())
    assert {r["image"].shape[:2] for r in records} == {(50, 70), (64, 64), (90, 40)}
    from tf_rmi.data import image_ops
    record = records[0]
    padded = image_ops.resize_and_pad(record["image"], 64)
    logits = runner.shared_trunk(image_ops.caffe_preprocess(padded), record["words"][None])
    assert logits.shape == (1, 64, 64)


def test_lengths_are_the_words_the_model_reads(setup):
    # The fixture's expressions hold 2, 3, 4 | 2 | 2, 3 non-pad ids (sentences
    # are longer on purpose: the ids decide).
    _, count, model, run_config = setup
    results = eval_lib.evaluate(model, run_config, EvalConfig(split="val"), progress=False)
    groups = results["raw"]["length_groups"]
    assert results["length_group_bounds"][0][0] == 2 and results["length_group_bounds"][-1][1] == 4
    assert [g["count"] for g in groups] == [3, 2, 1]


def test_crf_metrics_and_figures_when_asked(setup, tmp_path):
    _, count, model, run_config = setup
    out_dir = str(tmp_path / "results")
    results = eval_lib.evaluate(model, run_config, EvalConfig(split="val", crf=True, visualize=2),
                                out_dir=out_dir, progress=False)
    assert results["crf"]["count"] == count
    assert set(results["crf"]["precision"]) == {"0.5", "0.6", "0.7", "0.8", "0.9"}
    assert "DenseCRF" in open(os.path.join(out_dir, "results.md")).read()
    assert os.path.getsize(os.path.join(out_dir, "fig7_results.png")) > 0


def test_max_expressions_stops_early(setup):
    _, _, model, run_config = setup
    results = eval_lib.evaluate(model, run_config, EvalConfig(split="val", max_expressions=4),
                                progress=False)
    assert results["expressions"] == 4 and results["raw"]["count"] == 4


def test_iou_thresholds_and_length_groups_are_the_eval_configs(setup):
    root, count, model, run_config = setup
    results = eval_lib.evaluate(model, run_config, EvalConfig(
        split="val", iou_thresholds=(0.25, 0.75), num_length_groups=2), progress=False)
    raw = results["raw"]
    per = results["per_expression"]["raw"]
    ious = np.array(per["intersection"]) / np.maximum(np.array(per["union"]), 1)
    assert raw["precision"] == {"0.25": pytest.approx(np.mean(ious >= 0.25)),
                                "0.75": pytest.approx(np.mean(ious >= 0.75))}
    # Lengths 2, 3 and 4 words: 3 groups by default (one per length), 2 asked.
    default = eval_lib.evaluate(model, run_config, EvalConfig(split="val"), progress=False)
    assert list(default["raw"]["precision"]) == ["0.5", "0.6", "0.7", "0.8", "0.9"]
    assert len(default["length_group_bounds"]) == 3
    assert len(results["length_group_bounds"]) == len(raw["length_groups"]) == 2
    assert sum(g["count"] for g in raw["length_groups"]) == count
    assert "P@0.25" in eval_lib.console_summary(results)
    assert "P@0.75" in eval_lib.results_markdown(results)


def test_empty_record_set_is_a_clear_error(setup, tmp_path):
    _, _, model, run_config = setup
    root = str(tmp_path)
    write_shards(os.path.join(root, "tiny"), "val", [])
    with pytest.raises(ValueError, match="holds no records"):
        eval_lib.evaluate(model, run_config, EvalConfig(split="val"), tfrecord_dir=root,
                          progress=False)


def test_missing_split_is_a_clear_error(setup):
    root, _, model, run_config = setup
    with pytest.raises(FileNotFoundError, match="make preprocess"):
        eval_lib.evaluate(model, run_config, EvalConfig(split="testB"), progress=False)


def test_entry_point_reports_a_bad_checkpoint_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "tf_rmi.evaluate", f"--checkpoint={tmp_path}/nothing"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "neither a run directory nor a checkpoint prefix" in result.stderr


def test_default_output_dir_is_named_after_the_run():
    prefix = os.path.join("runs", "unc_RMI", "checkpoints", "ckpt-7")
    assert eval_lib.default_output_dir(prefix, "testA") == os.path.join(
        "experiments", "results", "unc_RMI", "testA")


def test_entry_point_evaluates_a_run_directory(setup, tmp_path):
    root, count, model, run_config = setup
    run_dir = str(tmp_path / "tiny_run")
    write_run(run_dir, model, run_config.data, checkpoint_number=3)
    out_dir = str(tmp_path / "out")
    result = subprocess.run(
        [sys.executable, "-m", "tf_rmi.evaluate", f"--checkpoint={run_dir}", "--split=val",
         f"--output_dir={out_dir}", "--crf"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    saved = json.load(open(os.path.join(out_dir, "results.json")))
    assert saved["expressions"] == count and saved["crf"] is not None
    assert saved["checkpoint"].endswith("ckpt-3")
    assert "overall IoU" in result.stdout


def test_degenerate_samples_are_scored_as_the_original_and_counted(setup, tmp_path):
    """An empty-mask sample fails every threshold (I/U = 0 or the original's NaN)
    and adds its predicted pixels to the union of the overall IoU."""
    root, count, model, run_config = setup
    _write_eval_split(root, split="valdeg", empty_mask_copy=True)
    out_dir = str(tmp_path / "results")
    base = eval_lib.evaluate(model, run_config, EvalConfig(split="val"), progress=False)
    deg = eval_lib.evaluate(model, run_config, EvalConfig(split="valdeg", crf=True),
                            out_dir=out_dir, progress=False)
    assert deg["expressions"] == deg["raw"]["count"] == count + 1
    assert deg["degenerate"] == {"records": 1, "reasons": {"empty_mask": 1}}
    assert base["degenerate"] == {"records": 0, "reasons": {}}
    for t, value in base["raw"]["precision"].items():
        assert deg["raw"]["precision"][t] == pytest.approx(value * count / (count + 1))
    assert deg["raw"]["mean_iou"] == pytest.approx(base["raw"]["mean_iou"] * count / (count + 1))
    # The copy predicts what record 0 predicts (non-empty): more union, same intersection.
    assert deg["raw"]["overall_iou"] < base["raw"]["overall_iou"]
    assert "Scored but degenerate: 1 (empty_mask 1)" in open(
        os.path.join(out_dir, "results.md")).read()
    assert json.load(open(os.path.join(out_dir, "results.json")))["degenerate"]["records"] == 1


def test_default_output_dirs_of_raw_crf_and_partial_runs_differ():
    prefix = os.path.join("runs", "unc_RMI", "checkpoints", "ckpt-7")
    dirs = {eval_lib.default_output_dir(prefix, "val", crf=crf, max_expressions=n)
            for crf in (False, True) for n in (0, 100)}
    assert dirs == {os.path.join("experiments", "results", "unc_RMI", name)
                    for name in ("val", "val_crf", "val_first100", "val_crf_first100")}


def test_results_say_where_the_time_goes(setup):
    _, count, model, run_config = setup
    results = eval_lib.evaluate(model, run_config, EvalConfig(split="val", crf=True),
                                progress=False)
    stages = results["stage_seconds"]
    assert {"read_and_decode", "resize_and_pad_input", "model", "crf",
            "threshold_inverse_transform_and_score", "model_trunk", "model_head"} <= set(stages)
    assert all(v >= 0 for v in stages.values())
    assert stages["model_trunk"] + stages["model_head"] <= stages["model"] + 1e-6
    parts = sum(v for k, v in stages.items() if not k.startswith("model_"))
    assert parts <= results["seconds"] + 1e-6


def test_an_injected_runner_is_the_one_used(setup):
    _, count, model, run_config = setup

    class RecordingRunner(eval_lib.ModelRunner):
        def __init__(self, model):
            super().__init__(model)
            self.expressions = 0

        def shared_trunk(self, image, words):
            self.expressions += len(words)
            return super().shared_trunk(image, words)

    runner = RecordingRunner(model)
    injected = eval_lib.evaluate(model, run_config, EvalConfig(split="val"), progress=False,
                                 runner=runner)
    assert runner.expressions == count
    assert injected["stage_seconds"]["model_trunk"] == runner.stage_seconds["trunk"]
    default = eval_lib.evaluate(model, run_config, EvalConfig(split="val"), progress=False)
    assert runner.expressions == count  # the default path builds (or reuses) its own
    assert injected["raw"] == default["raw"]
