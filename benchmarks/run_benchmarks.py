"""tf_rmi benchmarks: the multimodal head, a D+RMI training step, evaluation,
preprocessing and peak memory, measured with one method (benchmarks/harness.py).

    make bench                                   # everything (~10 min on 2 CPU cores)
    python -m benchmarks.run_benchmarks --only=head,eval --repeats=3
    python -m benchmarks.run_benchmarks --quick  # tiny sizes, a smoke run

Writes benchmarks/results/<date>.json and benchmarks/results/latest.md.
"""
from __future__ import annotations

import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

from absl import app, flags

from benchmarks import harness

FLAGS = flags.FLAGS
flags.DEFINE_list("only", [], "Benchmarks to run (head, train_step, eval, preprocess, memory).")
flags.DEFINE_integer("repeats", 3, "Timed repeats per measurement.")
flags.DEFINE_bool("quick", False, "Tiny sizes: checks that every benchmark runs.")
flags.DEFINE_string("output_dir", "benchmarks/results", "Where results are written.")

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _paper_config(**overrides):
    from tf_rmi.config import ModelConfig

    values = dict(trunk="resnet101", weights="deeplab", model="RMI")
    if FLAGS.quick:
        values.update(trunk="small", small_trunk_width=4, input_size=64, visual_dim=32,
                      embed_dim=32, lstm_units=32, mlstm_units=16, vocab_size=50)
    values.update(overrides)
    return ModelConfig(**values)


def head_matmul_gflop(cfg, num_words: int, efficient: bool) -> float:
    """Forward matmul GFLOP of the RMI head for one image and `num_words` words.

    Straightforward: per step, every cell multiplies its full input
    [D + E + U + 8 + M] by the [., 4M] kernel. Efficient: the visual and spatial
    rows once per image, the word and sentence rows once per step (not per
    cell), the recurrent rows per cell and step. Plus the language LSTM.
    """
    cells = cfg.feature_size ** 2
    d, e, u, m = cfg.visual_dim, cfg.embed_dim, cfg.lstm_units, cfg.mlstm_units
    language = 2 * (e + u) * 4 * u * num_words
    if efficient:
        mlstm = (2 * cells * (d + 8) * 4 * m + num_words * (2 * (e + u) * 4 * m
                                                            + 2 * cells * m * 4 * m))
    else:
        mlstm = num_words * 2 * cells * (d + e + u + 8 + m) * 4 * m
    return (language + mlstm + 2 * cells * m) / 1e9


def _head_functions(model, visual, words, head_vars):
    """Argument-free closures: passing the model or variables as tf.function
    arguments would make them placeholders the tape does not watch."""
    import tensorflow as tf

    def forward():
        return model.segment(visual, words)["logits"]

    def forward_backward():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model.segment(visual, words)["logits"])
        return tape.gradient(loss, head_vars)

    return forward, forward_backward


def bench_head(repeats: int) -> dict:
    """Efficient vs straightforward multimodal LSTM head, visual features given."""
    import numpy as np
    import tensorflow as tf

    from tf_rmi.models.segmenter import build_model

    results = {}
    for num_words in (4, 20):
        models, fns = {}, {}
        for efficient in (True, False):
            cfg = _paper_config(trunk="small", small_trunk_width=4, efficient_head=efficient)
            model = build_model(cfg)
            if efficient is False:
                model.set_weights(models["efficient"].get_weights())
            name = "efficient" if efficient else "straightforward"
            models[name] = model
            h = cfg.feature_size
            visual = tf.random.normal([1, h, h, cfg.visual_dim])
            words = np.zeros((1, cfg.num_words), np.int32)
            words[0, -num_words:] = np.arange(1, num_words + 1) % (cfg.vocab_size - 1) + 1
            # The head's own variables (the visual projection runs before `segment`).
            head_vars = [v for v in model.trainable_variables
                         if "small_trunk" not in v.path and "conv0" not in v.path]

            forward, forward_backward = _head_functions(model, visual, words, head_vars)
            fns[(name, "fwd")] = tf.function(forward)
            fns[(name, "fwd+bwd")] = tf.function(forward_backward)
        for mode in ("fwd", "fwd+bwd"):
            pair = {name: (lambda f=fns[(name, mode)]: [
                tf.convert_to_tensor(t).numpy() for t in tf.nest.flatten(f()) if t is not None])
                for name in ("efficient", "straightforward")}
            timing = harness.interleaved_compare(pair, warmup=1, repeats=repeats)
            # The profiler does not look inside tf.cond branches (pad-step skipping),
            # so the head's FLOPs are counted analytically: its matmuls, forward;
            # the backward of a matmul costs two more of the same size.
            scale = 1 if mode == "fwd" else 3
            flops = {name: scale * 1e9 * head_matmul_gflop(cfg, num_words, name == "efficient")
                     for name in pair}
            results[f"{num_words}_words_{mode}"] = {
                "efficient": dict(timing["efficient"], gflop=flops["efficient"] / 1e9),
                "straightforward": dict(timing["straightforward"],
                                        gflop=flops["straightforward"] / 1e9),
                "speedup": timing["straightforward"]["median_s"] / timing["efficient"]["median_s"],
            }
    return results


def bench_train_step(repeats: int) -> dict:
    """One D+RMI training step at 320, batch 1, against the machine's matmul rate."""
    import keras
    import numpy as np
    import tensorflow as tf

    from tf_rmi import train_lib
    from tf_rmi.config import TrainConfig
    from tf_rmi.models.segmenter import build_model

    cfg = _paper_config()
    model = build_model(cfg)
    optimizer = train_lib.make_optimizer(TrainConfig())
    size = cfg.input_size
    images = tf.random.normal([1, size, size, 3]) * 50
    words = tf.constant(np.r_[np.zeros(cfg.num_words - 6), np.arange(1, 7)][None], tf.int32)
    mask = tf.cast(tf.random.uniform([1, size, size, 1]) > 0.8, tf.float32)
    variables = model.trainable_variables
    biases = model.bias_variables()

    @tf.function
    def step(images, words, mask):
        with tf.GradientTape() as tape:
            out = model((images, words), training=True)
            total, _, _ = train_lib.loss_fn(out["logits"], mask, model.decayed_kernels())
        grads = tape.gradient(total, variables)
        grads = train_lib.scale_bias_gradients(grads, variables, biases, 2.0)
        optimizer.apply_gradients(zip(grads, variables))
        return total

    timing = harness.measure(lambda: step(images, words, mask).numpy(), warmup=1, repeats=repeats)
    trunk_fn = tf.function(lambda x: model.trunk(x))
    trunk_flops = harness.graph_flops(trunk_fn.get_concrete_function(images)) / 1e9
    # The trunk is frozen: forward only. conv0 and the head train: forward and
    # backward, 3x their forward matmuls. The head is counted analytically
    # because the profiler does not look inside tf.cond (pad-step skipping).
    cells = cfg.feature_size ** 2
    conv0 = 2 * cells * model.trunk.output_channels * cfg.visual_dim / 1e9
    num_words = int(np.count_nonzero(words.numpy()))
    head = head_matmul_gflop(cfg, num_words, cfg.efficient_head)
    total = trunk_flops + 3 * (conv0 + head)
    matmul = harness.matmul_gflops(512 if FLAGS.quick else 2048, repeats=max(3, repeats))
    achieved = total / timing["median_s"]
    del keras
    return {"step": timing, "gflop_step": total, "gflop_trunk_forward": trunk_flops,
            "gflop_conv0_head_fwd_bwd": 3 * (conv0 + head), "words": num_words,
            "achieved_gflops": achieved, "matmul": matmul,
            "fraction_of_matmul_rate": achieved / matmul["gflops"],
            "flop_count_method": "trunk forward by tf.profiler (float_operation) on the trunk "
                                 "graph; conv0 and RMI head matmuls analytically, x3 for "
                                 "forward + backward (the trunk is frozen: no backward)"}


def bench_eval(repeats: int) -> dict:
    """Expressions/s at 7 expressions per image: shared trunk vs per expression."""
    import numpy as np
    import tensorflow as tf

    from tf_rmi.eval_lib import ModelRunner
    from tf_rmi.models.segmenter import build_model

    cfg = _paper_config()
    runner = ModelRunner(build_model(cfg))
    image = np.random.RandomState(0).randn(cfg.input_size, cfg.input_size, 3).astype(np.float32) * 50
    words = np.zeros((7, cfg.num_words), np.int32)
    for i in range(7):
        words[i, -(3 + i):] = np.arange(1, 4 + i) % (cfg.vocab_size - 1) + 1
    timing = harness.interleaved_compare({
        "shared_trunk": lambda: runner.shared_trunk(image, words),
        "per_expression": lambda: runner.per_expression(image, words)}, warmup=1, repeats=repeats)
    out = {name: dict(t, expressions_per_s=7 / t["median_s"]) for name, t in timing.items()}
    out["speedup"] = timing["per_expression"]["median_s"] / timing["shared_trunk"]["median_s"]
    del tf
    return out


def bench_preprocess(repeats: int) -> dict:
    """Synthetic-set preprocessing with 1 and 2 workers (same output bytes)."""
    from tf_rmi.data import preprocess_lib

    images = 8 if FLAGS.quick else 40
    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        def run(workers):
            out = os.path.join(tmp, f"w{workers}-{time.monotonic_ns()}")
            preprocess_lib.preprocess("shapes", "", out, splits=("train",), num_workers=workers,
                                      num_shards=4, progress=False,
                                      shapes_args={"num_train_images": images})
            return out
        timing = harness.interleaved_compare({"1_worker": lambda: run(1), "2_workers": lambda: run(2)},
                                             warmup=1, repeats=repeats)
    from tf_rmi.data.shapes import ShapesSource
    count = len(ShapesSource(num_train_images=images).expressions("train"))
    for name, t in timing.items():
        timings[name] = dict(t, expressions_per_s=count / t["median_s"])
    timings["expressions"] = count
    timings["speedup"] = timing["1_worker"]["median_s"] / timing["2_workers"]["median_s"]
    return timings


_MEMORY_CHILD = r"""
import resource, sys, numpy as np, tensorflow as tf
sys.path.insert(0, sys.argv[1])
from benchmarks import run_benchmarks as rb
from absl import flags
flags.FLAGS([sys.argv[0]] + (["--quick"] if sys.argv[3] == "1" else []))
from tf_rmi.models.segmenter import build_model
from tf_rmi import train_lib
from tf_rmi.config import TrainConfig
cfg = rb._paper_config()
model = build_model(cfg)
size = cfg.input_size
images = tf.random.normal([1, size, size, 3]) * 50
words = tf.constant(np.r_[np.zeros(cfg.num_words - 6), np.arange(1, 7)][None], tf.int32)
if sys.argv[2] == "train":
    opt = train_lib.make_optimizer(TrainConfig())
    mask = tf.cast(tf.random.uniform([1, size, size, 1]) > 0.8, tf.float32)
    @tf.function
    def step():
        with tf.GradientTape() as tape:
            out = model((images, words), training=True)
            total, _, _ = train_lib.loss_fn(out["logits"], mask, model.decayed_kernels())
        grads = tape.gradient(total, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables))
        return total
    for _ in range(3):
        step().numpy()
else:
    from tf_rmi.eval_lib import ModelRunner
    runner = ModelRunner(model)
    image = np.random.randn(size, size, 3).astype(np.float32)
    for _ in range(3):
        runner.shared_trunk(image, np.repeat(words.numpy(), 7, axis=0))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def bench_memory(repeats: int) -> dict:
    """Peak resident memory (ru_maxrss) of 3 D+RMI training steps and of evaluation."""
    del repeats
    out = {}
    for kind in ("train", "eval"):
        result = subprocess.run([sys.executable, "-c", _MEMORY_CHILD, REPO_ROOT, kind,
                                 "1" if FLAGS.quick else "0"],
                                capture_output=True, text=True, cwd=REPO_ROOT, timeout=1200)
        if result.returncode != 0:
            raise RuntimeError(f"memory child ({kind}) failed: {result.stderr[-1500:]}")
        kib = int(result.stdout.strip().splitlines()[-1])
        out[f"{kind}_peak_rss_gib"] = kib / 2 ** 20
    return out


BENCHMARKS = {"head": bench_head, "train_step": bench_train_step, "eval": bench_eval,
              "preprocess": bench_preprocess, "memory": bench_memory}


def summary_markdown(results: dict) -> str:
    lines = [f"# Benchmarks, {results['date']}", "", f"Machine: {results['machine']}", ""]
    if "head" in results:
        rows = []
        for key, r in results["head"].items():
            rows.append([key.replace("_", " "), f"{r['efficient']['median_s']:.3f}",
                         f"{r['straightforward']['median_s']:.3f}", f"{r['speedup']:.2f}x",
                         f"{r['efficient']['gflop']:.1f} / {r['straightforward']['gflop']:.1f}"])
        lines += ["## Multimodal LSTM head (paper sizes, 40x40, batch 1)", "",
                  harness.markdown_table(rows, ["case", "efficient s", "straightforward s",
                                                "speedup", "GFLOP (eff / straight)"])]
    if "train_step" in results:
        r = results["train_step"]
        lines += ["## D+RMI training step (320x320, batch 1)", "",
                  f"- step median {r['step']['median_s']:.2f} s; {r['gflop_step']:.1f} GFLOP per step "
                  f"(trunk forward {r['gflop_trunk_forward']:.1f}, conv0 + head forward and "
                  f"backward {r['gflop_conv0_head_fwd_bwd']:.1f}, {r['words']} words); "
                  f"{r['achieved_gflops']:.1f} GFLOP/s achieved",
                  f"- float32 matmul ({r['matmul']['n']}^2): {r['matmul']['gflops']:.1f} GFLOP/s; "
                  f"fraction of that rate: {100 * r['fraction_of_matmul_rate']:.0f}%",
                  f"- FLOPs counted by: {r['flop_count_method']}", ""]
    if "eval" in results:
        r = results["eval"]
        lines += ["## Evaluation, 7 expressions per image (D+RMI, 320)", "",
                  f"- shared trunk {r['shared_trunk']['expressions_per_s']:.2f} expr/s, "
                  f"per expression {r['per_expression']['expressions_per_s']:.2f} expr/s: "
                  f"{r['speedup']:.2f}x", ""]
    if "preprocess" in results:
        r = results["preprocess"]
        lines += ["## Preprocessing (synthetic set, 320x320 records)", "",
                  f"- 1 worker {r['1_worker']['expressions_per_s']:.1f} expr/s, 2 workers "
                  f"{r['2_workers']['expressions_per_s']:.1f} expr/s: {r['speedup']:.2f}x", ""]
    if "memory" in results:
        r = results["memory"]
        lines += ["## Peak resident memory", "",
                  f"- D+RMI training (batch 1): {r['train_peak_rss_gib']:.2f} GiB; "
                  f"evaluation: {r['eval_peak_rss_gib']:.2f} GiB", ""]
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    names = FLAGS.only or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        sys.exit(f"Unknown benchmarks {unknown}; choose from {sorted(BENCHMARKS)}")
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": harness.machine(), "quick": FLAGS.quick, "repeats": FLAGS.repeats,
               "command": " ".join(sys.argv)}
    for name in names:
        print(f"== {name}", flush=True)
        results[name] = BENCHMARKS[name](FLAGS.repeats)
        print(json.dumps(results[name], indent=1)[:2000], flush=True)
    stamp = results["date"][:19].replace(":", "")
    harness.write_json(os.path.join(FLAGS.output_dir, f"{stamp}{'-quick' if FLAGS.quick else ''}.json"),
                       results)
    md = summary_markdown(results)
    path = os.path.join(FLAGS.output_dir, "latest-quick.md" if FLAGS.quick else "latest.md")
    with open(path + ".tmp", "w") as f:
        f.write(md)
    os.replace(path + ".tmp", path)
    print(md)


if __name__ == "__main__":
    app.run(main)
