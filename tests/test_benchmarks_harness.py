"""The benchmark harness's logic (no timing assertions)."""
import tensorflow as tf

from benchmarks import harness


def test_measure_counts_warmup_and_repeats():
    calls = []
    result = harness.measure(lambda: calls.append(1), warmup=2, repeats=3)
    assert len(calls) == 5 and result["repeats"] == 3
    assert result["min_s"] <= result["median_s"] <= result["max_s"]


def test_interleaved_compare_runs_every_function_alike():
    order = []
    out = harness.interleaved_compare({"a": lambda: order.append("a"),
                                       "b": lambda: order.append("b")}, warmup=1, repeats=2)
    assert order == ["a", "b", "a", "b", "a", "b"]
    assert set(out) == {"a", "b"}


def test_graph_flops_counts_a_matmul():
    fn = tf.function(lambda x, y: tf.linalg.matmul(x, y))
    concrete = fn.get_concrete_function(tf.TensorSpec([8, 16]), tf.TensorSpec([16, 4]))
    assert harness.graph_flops(concrete) == 2 * 8 * 16 * 4


def test_markdown_table():
    table = harness.markdown_table([[1, 2]], ["a", "b"])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| 1 | 2 |"]
