"""The demo's orchestration at tiny sizes: every phase runs and writes its outputs."""
import json
import os

import numpy as np
import pytest

from tf_rmi.evaluation import metrics
from tf_rmi.recipes.demo_lib import DemoConfig, compare_models, run_demo


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    # Expressions cut to 6 words: the unrolled head traces about 3x faster than at 20.
    cfg = DemoConfig(input_size=64, small_trunk_width=4, dim=8, num_words=6, steps=4,
                     batch_size=2, visualize=2, eval_every=2, bootstrap_resamples=50,
                     pretrain_steps=3, pretrain_batch_size=2)
    out, work = str(root / "demo"), str(root / "work")
    summary = run_demo(cfg, out, work, crf=True, num_train_images=4, num_test_images=2,
                       progress=False)
    return cfg, out, work, summary


def test_demo_runs_every_phase_and_writes_tables_and_figures(demo_run):
    _, out, _, summary = demo_run
    assert set(summary["models"]) == {"RMI", "LSTM"}
    for kind in ("RMI", "LSTM"):
        results = json.load(open(os.path.join(out, kind, "results.json")))
        assert results["split"] == "test" and results["crf"] is not None
        assert os.path.exists(os.path.join(out, kind, "fig7_results.png"))
    figures = os.listdir(os.path.join(out, "figures"))
    assert any(name.endswith("fig6_response_maps.png") for name in figures)
    assert any(name.endswith("fig5_per_word.png") for name in figures)
    table = open(os.path.join(out, "summary.md")).read()
    assert "| RMI |" in table and "| LSTM |" in table and "Targets:" in table
    assert "95 % CI" in table and "relative gain" in table
    assert set(summary["targets"]) >= {"rmi_overall_iou_met", "rmi_precision_50_met",
                                       "rmi_beats_lstm_on_longest", "fresh_seed_gap_met"}


def test_demo_validates_during_training_and_tests_the_best_step(demo_run):
    _, out, work, summary = demo_run
    for kind in ("RMI", "LSTM"):
        curve = summary["curves"][kind]
        assert [h["step"] for h in curve] == [2, 4]
        best = json.load(open(os.path.join(work, "runs", kind, "best.json")))
        assert summary["models"][kind]["best_step"] == best["step"]
        results = json.load(open(os.path.join(out, kind, "results.json")))
        assert results["checkpoint"].endswith(os.path.join("best", f"ckpt-{best['step']}"))
    png = open(os.path.join(out, "learning_curves.png"), "rb").read()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_pretrains_the_trunk_and_trains_both_models_with_it_frozen(demo_run):
    import tensorflow as tf

    _, _, work, summary = demo_run
    trunk_dir = os.path.join(work, "runs", "trunk")
    assert set(summary["trunk_pretraining"]["val_accuracy"]) == {"colour", "shape", "size"}
    source = tf.train.load_checkpoint(os.path.join(trunk_dir, "trunk"))
    keys = [k for k in source.get_variable_to_shape_map() if k.startswith("trunk/")]
    assert keys
    for kind in ("RMI", "LSTM"):
        run_dir = os.path.join(work, "runs", kind)
        assert json.load(open(os.path.join(run_dir, "config.json")))["train"]["pretrained"] == \
            trunk_dir
        saved = tf.train.load_checkpoint(tf.train.latest_checkpoint(
            os.path.join(run_dir, "checkpoints")))
        for key in keys:
            np.testing.assert_array_equal(saved.get_tensor("model/" + key),
                                          source.get_tensor(key))


def test_demo_scores_a_test_split_of_another_seed(demo_run):
    cfg, _, work, summary = demo_run
    manifest = json.load(open(os.path.join(work, f"tfrecords_seed{cfg.fresh_seed}", "shapes",
                                           "manifest.json")))
    assert manifest["settings"]["seed"] == cfg.fresh_seed != cfg.seed
    fresh = summary["models"]["RMI"]["fresh_seed_test"]
    assert fresh["seed"] == cfg.fresh_seed and fresh["expressions"] > 0


def test_demo_images_are_drawn_square_at_the_input_size(demo_run):
    _, _, work, _ = demo_run
    manifest = json.load(open(os.path.join(work, "tfrecords", "shapes", "manifest.json")))
    settings = manifest["settings"]
    assert settings["min_size"] == settings["max_size"] == 64


def test_demo_reads_the_configured_number_of_words(demo_run):
    cfg, _, work, _ = demo_run
    for records in ("tfrecords", f"tfrecords_seed{cfg.fresh_seed}"):
        manifest = json.load(open(os.path.join(work, records, "shapes", "manifest.json")))
        assert manifest["settings"]["num_words"] == cfg.num_words == 6
    for kind in ("RMI", "LSTM"):
        config = json.load(open(os.path.join(work, "runs", kind, "config.json")))
        assert config["model"]["num_words"] == cfg.num_words and "num_words" not in config["data"]


def _per_expression(inter, union, lengths, ids=None):
    return {"sent_id": ids or [str(k) for k in range(len(inter))], "length": lengths,
            "raw": {"intersection": inter, "union": union}}


def test_compare_models_pairs_expressions_and_brackets_the_difference():
    rng = np.random.default_rng(0)
    n = 400
    union = rng.integers(50, 100, n)
    lengths = list(rng.integers(1, 21, n))
    lstm_i = (union * 0.4).astype(int)
    rmi_i = (union * 0.5).astype(int)
    bounds = metrics.length_group_bounds(lengths)
    result = compare_models(_per_expression(list(rmi_i), list(union), lengths),
                            _per_expression(list(lstm_i), list(union), lengths), bounds, 200)
    overall = result["overall"]
    assert overall["low"] <= overall["difference"] <= overall["high"]
    assert 0.08 < overall["low"] and overall["high"] < 0.12
    assert sum(g["count"] for g in result["groups"]) == n
    assert all(20 < g["relative_gain_percent"] < 30 for g in result["groups"])
    with pytest.raises(ValueError, match="different expressions"):
        compare_models(_per_expression([1], [2], [3], ["a"]), _per_expression([1], [2], [3], ["b"]),
                       bounds)


def test_bootstrap_interval_contains_zero_for_equal_models():
    rng = np.random.default_rng(1)
    union = rng.integers(10, 100, 300)
    inter = (union * rng.uniform(0, 1, 300)).astype(int)
    result = metrics.bootstrap_overall_iou_difference(inter, union, inter[::-1], union[::-1],
                                                      num_resamples=300)
    assert result["low"] < 0 < result["high"]
    with pytest.raises(ValueError, match="equally long"):
        metrics.bootstrap_overall_iou_difference([1], [2], [1, 2], [2, 3])


def test_summary_prints_the_papers_relative_gains(demo_run):
    _, out, _, summary = demo_run
    assert set(summary["paper_relative_gain"]) >= {"Gref", "unc", "unc+", "referit"}
    table = open(os.path.join(out, "summary.md")).read()
    gain = summary["paper_relative_gain"]["Gref"][-1]["relative_gain_percent"]
    assert f"{gain:+.2f} %" in table


def test_update_readme_replaces_only_the_demo_block(demo_run, tmp_path):
    from tf_rmi.recipes.demo_lib import README_BEGIN, README_END, update_readme

    _, out, _, _ = demo_run
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n{README_BEGIN}\nold table\n{README_END}\nrest\n")
    update_readme(os.path.join(out, "summary.md"), str(readme))
    text = readme.read_text()
    assert "old table" not in text and "| RMI |" in text
    assert text.startswith("# title\n") and text.endswith(f"{README_END}\nrest\n")
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="block to replace"):
        update_readme(os.path.join(out, "summary.md"), str(readme))


def test_kind_breakdown_scores_each_description_kind_of_the_test_split(demo_run):
    cfg, out, _, summary = demo_run
    from tf_rmi.data.shapes import KINDS
    from tf_rmi.recipes.demo_lib import expression_kinds

    kinds = expression_kinds(cfg, num_train_images=4, num_test_images=2)
    results = json.load(open(os.path.join(out, "RMI", "results.json")))
    assert set(results["per_expression"]["sent_id"]) == set(kinds)  # every one has a kind
    by_kind = summary["models"]["RMI"]["by_kind"]
    assert set(by_kind) <= set(KINDS)
    assert sum(v["count"] for v in by_kind.values()) == results["expressions"]
    assert "by what the expression asks for" in open(os.path.join(out, "summary.md")).read()


def test_kind_breakdown_pools_intersections_and_unions_per_kind():
    from tf_rmi.recipes.demo_lib import kind_breakdown

    per = _per_expression([10, 0, 30, 5], [20, 10, 40, 50], [1, 2, 3, 4], ["a", "b", "c", "d"])
    out = kind_breakdown(per, {"a": "attributes", "b": "attributes", "c": "relation",
                               "d": "relation"})
    assert out["attributes"] == {"count": 2, "overall_iou": 10 / 30, "precision_50": 0.5}
    assert out["relation"]["overall_iou"] == 35 / 90 and out["relation"]["precision_50"] == 0.5
