"""The benchmark harness's logic and the suite's counting (no timing assertions)."""
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import harness, suite


def test_measure_counts_warmup_and_repeats():
    calls = []
    result = harness.measure(lambda: calls.append(1), warmup=2, repeats=3)
    assert len(calls) == 5 and result["repeats"] == 3
    assert result["min_s"] <= result["median_s"] <= result["max_s"]


def test_interleaved_compare_alternates_the_functions():
    order = []
    out = harness.interleaved_compare({"a": lambda: order.append("a"),
                                       "b": lambda: order.append("b")}, warmup=1, repeats=2)
    assert order == ["a", "b", "a", "b", "a", "b"]
    assert set(out) == {"a", "b"}


def test_summarize_gives_median_min_max():
    assert harness.summarize([3.0, 1.0, 2.0]) == {"median_s": 2.0, "min_s": 1.0, "max_s": 3.0,
                                                  "repeats": 3}


def test_summarize_without_timings_is_a_clear_error():
    with pytest.raises(ValueError, match="repeats >= 1"):
        harness.summarize([])


def test_matmul_gflops_reports_the_flop_rate_of_its_median():
    result = harness.matmul_gflops(n=64, warmup=1, repeats=3)
    assert result["gflops"] == pytest.approx(2 * 64 ** 3 / result["median_s"] / 1e9)


def test_graph_flops_counts_a_matmul():
    fn = tf.function(lambda x, y: tf.linalg.matmul(x, y))
    concrete = fn.get_concrete_function(tf.TensorSpec([8, 16]), tf.TensorSpec([16, 4]))
    assert harness.graph_flops(concrete) == 2 * 8 * 16 * 4


def test_graph_flops_follows_the_branch_taken_by_a_cond():
    a = tf.ones([8, 8])
    fn = tf.function(lambda p: tf.cond(p > 0, lambda: tf.matmul(a, a), lambda: a))
    concrete = fn.get_concrete_function(tf.TensorSpec([]))
    predicate_flops = harness.graph_flops(concrete)  # the profiler alone stops at the cond
    assert harness.graph_flops(concrete, lambda name: True) == predicate_flops + 2 * 8 ** 3
    assert harness.graph_flops(concrete, lambda name: False) == predicate_flops


def test_op_profile_attributes_time_to_the_matmul():
    a = tf.random.normal([256, 256])
    fn = tf.function(lambda: tf.reduce_sum(tf.matmul(a, a)))
    fn()
    profile = harness.op_profile(lambda: fn().numpy(), calls=2, top=3)
    assert "MatMul" in profile["ops"][0][0]
    assert sum(share for _, _, share in profile["ops"]) <= 1.0 + 1e-9


def test_write_text_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = os.path.join(tmp_path, "out", "latest.md")
    harness.write_text(path, "one")
    harness.write_text(path, "two")
    assert open(path).read() == "two"
    assert os.listdir(os.path.dirname(path)) == ["latest.md"]


def test_target_verdict_says_by_how_much_a_target_is_missed():
    assert harness.target_verdict(4.0, 4.0) == "yes"
    assert harness.target_verdict(3.0, 4.0) == "no, by 25.0%"
    assert harness.target_verdict(7.5, 6.0, higher_is_better=False) == "no, by 25.0%"


def test_markdown_table():
    table = harness.markdown_table([[1, 2]], ["a", "b"])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]


def test_head_flop_count_reproduces_the_issue_figures_with_conv0():
    cfg = suite.paper_config(suite.Settings())
    conv0 = suite.conv0_gflop(cfg, 2048)
    for words, (straight, efficient) in suite.ISSUE_HEAD_GFLOP.items():
        assert suite.head_matmul_gflop(cfg, words, False) + conv0 == pytest.approx(straight, abs=1)
        assert suite.head_matmul_gflop(cfg, words, True) + conv0 == pytest.approx(efficient, abs=1)


def test_front_padded_words_put_the_expression_at_the_end():
    words = suite.front_padded_words(5, [2, 5], vocab_size=50)
    assert words.dtype == np.int32
    assert np.count_nonzero(words, axis=1).tolist() == [2, 5]
    assert words[0, :3].tolist() == [0, 0, 0]


def test_step_branch_taken_runs_only_the_word_steps():
    taken = suite.step_branch_taken(num_steps=20, num_words=4)
    assert taken("cond") is False and taken("model/cond_15") is False
    assert taken("cond_16") is True and taken("gradient_tape/cond_19/StatelessIf") is True
    assert taken("while/body") is None


def test_head_profiler_count_agrees_with_the_analytic_matmul_count():
    from tf_rmi.models.segmenter import build_model

    cfg = suite.paper_config(suite.Settings(quick=True), num_words=6, visual_dim=64,
                             embed_dim=64, lstm_units=64, mlstm_units=64)
    model = build_model(cfg)
    visual = tf.random.normal([1, cfg.feature_size, cfg.feature_size, cfg.visual_dim])
    words = suite.front_padded_words(cfg.num_words, [4], cfg.vocab_size)
    concrete = tf.function(lambda: model.segment(visual, words)["logits"]).get_concrete_function()
    counted = harness.graph_flops(concrete, suite.step_branch_taken(cfg.num_words, 4)) / 1e9
    analytic = suite.head_matmul_gflop(cfg, 4, efficient=True)
    # The profiler also counts elementwise ops: a little above the matmuls alone.
    assert analytic <= counted <= 1.3 * analytic


def _fake_results(quick=False):
    timing = {"median_s": 2.0, "min_s": 1.0, "max_s": 3.0, "repeats": 3}
    return {"date": "2026-11-24T21:43:32+00:00", "command": "python -m benchmarks.run_benchmarks",
            "machine": {"host_kind": "cpu2"},
            "settings": {"quick": quick, "precision": "float32", "jit_compile": False,
                         "repeats": 5, "slow_repeats": 3},
            "preprocess": {"expressions": 10, "shards": 4, "same_output": True, "speedup": 1.5,
                           "1_worker": dict(timing, expressions_per_s=5.0, parent_cpu_s=1.0,
                                            worker_cpu_s=0.0),
                           "2_workers": dict(timing, expressions_per_s=7.5, parent_cpu_s=0.1,
                                             worker_cpu_s=1.0)},
            "memory": {"train_peak_rss_gib": 4.5, "eval_peak_rss_gib": 4.0}}


def test_target_rows_cover_the_benchmarks_present():
    rows = suite.target_rows(_fake_results())
    assert [(r["target"], r["met"]) for r in rows] == [
        ("preprocessing speedup, 2 workers", "no, by 16.7%"),
        ("training peak memory (GiB)", "yes")]


def test_result_files_are_named_by_date_and_host_kind(tmp_path):
    results = _fake_results()
    results["targets"] = suite.target_rows(results)
    paths = suite.write_results(results, str(tmp_path))
    assert os.path.basename(paths["json"]) == "2026-11-24T214332-cpu2.json"
    text = open(paths["markdown"]).read()
    assert "| preprocessing speedup, 2 workers | 1.50x | 1.8x | no, by 16.7% |" in text
    assert "same output bytes: True" in text


def test_quick_results_do_not_replace_latest_md(tmp_path):
    results = _fake_results(quick=True)
    results["targets"] = []
    paths = suite.write_results(results, str(tmp_path))
    assert os.path.basename(paths["markdown"]) == "latest-quick.md"
    assert paths["json"].endswith("-cpu2-quick.json")


def test_demo_step_benchmark_runs_both_models_at_two_batches():
    # Sentences of up to 4 words: the same steps, traced several times faster than 20.
    result = suite.bench_demo_step(suite.Settings(quick=True, repeats=1), num_words=4)
    assert set(result["models"]) == {"RMI", "LSTM"}
    b1, b2 = result["batch_sizes"]
    for entry in result["models"].values():
        small, large = entry[f"batch_{b1}"], entry[f"batch_{b2}"]
        # The FLOP count grows with the batch, and every figure is positive.
        assert large["gflop_step"] > small["gflop_step"] > 0
        assert small["samples_per_s"] > 0 and 0 < small["fraction_of_matmul_rate"]
    assert result["models"]["RMI"][f"batch_{b1}"]["gflop_step"] > \
        result["models"]["LSTM"][f"batch_{b1}"]["gflop_step"]
    buckets = result["models"]["RMI"]["length_buckets"]
    assert buckets["bucketed"]["step_s"] > 0 and buckets["mixed"]["step_s"] > 0
    assert (buckets["bucketed"]["mean_longest_sentence"]
            <= buckets["mixed"]["mean_longest_sentence"])
    # The demo's trunk is pretrained and frozen: its cached outputs are timed too.
    assert buckets["bucketed_cached"]["step_s"] > 0 and buckets["speedup_cached"] > 0
    results = dict(_fake_results(quick=True), demo_step=result)
    assert "bucketed by length" in suite.summary_markdown(results)


def test_length_batches_draw_each_bucketed_batch_from_one_bucket():
    import numpy as np

    from tf_rmi.data.pipeline import length_bucket_boundaries

    lengths = list(range(1, 21)) * 5
    rng = np.random.default_rng(0)
    bounds = length_bucket_boundaries(20)
    for batch in suite.length_batches(lengths, 8, 30, True, 20, rng):
        assert len(set(np.searchsorted(bounds, batch, side="right"))) == 1
    mixed = suite.length_batches(lengths, 8, 30, False, 20, rng)
    assert any(len(set(np.searchsorted(bounds, b, side="right"))) > 1 for b in mixed)


def test_head_benchmark_functions_compute_every_gradient_when_traced():
    # Default arguments of a tf.function become inputs: variables passed so are
    # not watched by the tape and the "fwd+bwd" timed nothing but pad checks.
    import tensorflow as tf

    from benchmarks import suite
    from tests.conftest import tiny_model_config
    from tf_rmi.models.segmenter import build_model

    cfg = tiny_model_config(num_words=3)
    model = build_model(cfg)
    visual = tf.random.normal([1, cfg.feature_size, cfg.feature_size, cfg.visual_dim], seed=1)
    words = suite.front_padded_words(cfg.num_words, [3], cfg.vocab_size)
    head_vars = [v for v in model.trainable_variables
                 if "small_trunk" not in v.path and "conv0" not in v.path]
    _, forward_backward = suite._head_functions(model, visual, words, head_vars)
    grads = tf.function(forward_backward)()
    assert len(grads) == len(head_vars)
    assert all(float(tf.reduce_sum(tf.abs(g))) > 0 for g in grads)


def test_peak_memory_of_a_child_is_its_own_not_its_large_parents():
    # The memory benchmark runs in a child of the (large) benchmark runner;
    # getrusage's ru_maxrss would report the parent's size at the fork.
    ballast = np.ones(2 ** 28, np.float32)  # 1 GiB, every page touched
    code = ("import resource; from benchmarks.suite import peak_rss_gib; "
            "print(peak_rss_gib(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=suite.REPO_ROOT, timeout=120).stdout.split()
    own, inherited = float(out[0]), float(out[1])
    assert ballast.sum() > 0
    assert own < 0.5 and inherited >= 1.0
