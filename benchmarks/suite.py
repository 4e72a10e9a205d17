"""The five measurements of `make bench`, with the method of `harness.py`.

Each `bench_<name>(settings)` returns a JSON-ready dict. Measurements that
need a fresh process (peak memory; preprocessing, which forks workers and so
must not follow TensorFlow work in the same process) run children through
`python -m benchmarks.suite <child> <settings json>`.
"""
from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from typing import Callable, Dict, List, Optional

from benchmarks import harness

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The issue's forward GFLOP of the head (conv0 included), straightforward / efficient.
ISSUE_HEAD_GFLOP = {4: (96.0, 26.0), 20: (456.0, 77.0)}


@dataclasses.dataclass
class Settings:
    """How to run: `quick` uses tiny sizes (a smoke run, numbers meaningless)."""

    repeats: int = 5
    slow_repeats: int = 3  # the D+RMI training step, evaluation and preprocessing
    quick: bool = False
    precision: str = "float32"  # or mixed_float16 / mixed_bfloat16 (GPU)
    jit_compile: bool = False


def apply_precision(settings: Settings) -> None:
    """Sets the Keras dtype policy before any model is built."""
    import keras

    keras.mixed_precision.set_global_policy(settings.precision)


def paper_config(settings: Settings, **overrides):
    """D+RMI at the paper's sizes (ResNet-101, 320, 1000/1000/1000/500), or
    tiny sizes with `settings.quick`."""
    from tf_rmi.config import ModelConfig

    values = dict(trunk="resnet101", weights="deeplab", model="RMI")
    if settings.quick:
        values.update(trunk="small", small_trunk_width=4, input_size=64, visual_dim=32,
                      embed_dim=32, lstm_units=32, mlstm_units=16, vocab_size=500)
    values.update(overrides)
    return ModelConfig(**values)


def front_padded_words(num_steps: int, lengths: List[int], vocab_size: int):
    """[len(lengths), num_steps] int32 ids, front-padded with 0 as the records are."""
    import numpy as np

    words = np.zeros((len(lengths), num_steps), np.int32)
    for i, length in enumerate(lengths):
        words[i, num_steps - length:] = np.arange(1, length + 1) % (vocab_size - 1) + 1
    return words


def head_matmul_gflop(cfg, num_words: int, efficient: bool) -> float:
    """Forward matmul GFLOP (2 x MACs) of the RMI head for one image and
    `num_words` words, from visual features (conv0 not included).

    Straightforward: per step every cell multiplies its whole input
    [D + E + U + 8 + M] by the [., 4M] kernel. Efficient: the visual and spatial
    rows once per image, the word and sentence rows once per step (not per
    cell), the recurrent rows per cell and step. Both: the language LSTM
    [E + U] x 4U per step and conv2 (M -> 1) per cell.
    """
    cells = cfg.feature_size ** 2
    d, e, u, m = cfg.visual_dim, cfg.embed_dim, cfg.lstm_units, cfg.mlstm_units
    language = 2 * (e + u) * 4 * u * num_words
    if efficient:
        mlstm = (2 * cells * (d + 8) * 4 * m
                 + num_words * (2 * (e + u) * 4 * m + 2 * cells * m * 4 * m))
    else:
        mlstm = num_words * 2 * cells * (d + e + u + 8 + m) * 4 * m
    return (language + mlstm + 2 * cells * m) / 1e9


def conv0_gflop(cfg, trunk_channels: int) -> float:
    """Forward GFLOP of conv0 (trunk channels -> visual_dim, 1x1, per cell)."""
    return 2 * cfg.feature_size ** 2 * trunk_channels * cfg.visual_dim / 1e9


def step_branch_taken(num_steps: int, num_words: int) -> Callable[[str], bool]:
    """For `harness.graph_flops`: the head's tf.cond of step t (ops named
    `cond`, `cond_1`, ... and their gradients) runs its compute branch only for
    the last `num_words` steps (front padding)."""
    pattern = re.compile(r"(?:^|/)cond(?:_(\d+))?(?:/|$)")

    def taken(op_name: str):
        match = pattern.search(op_name)
        if match is None:
            return None
        step = int(match.group(1) or 0)
        return step >= num_steps - num_words

    return taken


def _blocking(fn):
    """A call that waits for every output of a TensorFlow function."""
    import tensorflow as tf

    def call():
        return [t.numpy() for t in tf.nest.flatten(fn()) if t is not None]

    return call


# -------------------------------------------------------------------- head


def head_matmul_shapes(cfg) -> Dict[str, tuple]:
    """The per-step matmuls of the multimodal LSTM's forward and backward, as
    (rows, inner, cols, transpose_a, transpose_b): efficient (recurrent rows
    only) and straightforward (the whole per-cell input)."""
    cells = cfg.feature_size ** 2
    m4 = 4 * cfg.mlstm_units
    full = cfg.visual_dim + cfg.embed_dim + cfg.lstm_units + 8 + cfg.mlstm_units
    shapes = {}
    for name, k in (("efficient", cfg.mlstm_units), ("straightforward", full)):
        shapes[f"{name}_forward"] = (cells, k, m4, False, False)        # x @ K
        shapes[f"{name}_grad_input"] = (cells, m4, k, False, True)      # dz @ K^T
        shapes[f"{name}_grad_kernel"] = (k, cells, m4, True, False)     # x^T @ dz
    return shapes


def matmul_shape_rates(cfg, repeats: int) -> Dict[str, dict]:
    """GFLOP/s of each per-step head matmul shape alone, interleaved: whether
    the efficient formulation's smaller matmuls run slower per FLOP."""
    import tensorflow as tf

    fns, flop = {}, {}
    for name, (rows, inner, cols, ta, tb) in head_matmul_shapes(cfg).items():
        a = tf.random.normal([inner, rows] if ta else [rows, inner])
        b = tf.random.normal([cols, inner] if tb else [inner, cols])
        fn = tf.function(lambda a=a, b=b, ta=ta, tb=tb: tf.linalg.matmul(
            a, b, transpose_a=ta, transpose_b=tb))
        fns[name] = lambda fn=fn: fn().numpy()
        flop[name] = 2 * rows * inner * cols
    timing = harness.interleaved_compare(fns, warmup=1, repeats=repeats)
    return {name: dict(t, gflop=flop[name] / 1e9, gflops=flop[name] / t["median_s"] / 1e9)
            for name, t in timing.items()}


def _head_functions(model, visual, words, head_vars):
    """(forward, forward_backward): argument-free closures over one model."""
    import tensorflow as tf

    def forward():
        return model.segment(visual, words)["logits"]

    def forward_backward():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.cast(model.segment(visual, words)["logits"], tf.float32))
        grads = tape.gradient(loss, head_vars)
        if any(g is None for g in grads):
            raise RuntimeError("head benchmark: a head variable got no gradient")
        # The embedding's gradient is sparse: densify, as an optimizer would
        # apply it, so both formulations do the same work after the head.
        return [tf.convert_to_tensor(g) for g in grads]

    return forward, forward_backward


def bench_head(settings: Settings) -> dict:
    """Efficient vs straightforward multimodal LSTM head, from visual features
    (no trunk), forward and forward+backward (gradients wrt the head's own
    variables), at 4 and 20 words, batch 1."""
    import tensorflow as tf

    from tf_rmi.models.segmenter import build_model

    results = {}
    for num_words in (4, 20):
        fns, concrete, cfgs = {}, {}, {}
        reference = None
        for name in ("efficient", "straightforward"):
            cfg = paper_config(settings, trunk="small", small_trunk_width=4,
                               efficient_head=(name == "efficient"))
            model = build_model(cfg)
            if reference is None:
                reference = model
            else:
                model.set_weights(reference.get_weights())  # same numbers both ways
            cfgs[name] = cfg
            h = cfg.feature_size
            visual = tf.random.normal([1, h, h, cfg.visual_dim], seed=1)
            words = front_padded_words(cfg.num_words, [num_words], cfg.vocab_size)
            head_vars = [v for v in model.trainable_variables
                         if "small_trunk" not in v.path and "conv0" not in v.path]
            # The functions take no arguments, not even defaults: tf.function turns
            # default arguments into inputs, and variables or a model passed so
            # become placeholders that the tape does not watch (every gradient
            # None, and "fwd+bwd" would time the forward's pad checks only).
            forward, forward_backward = _head_functions(model, visual, words, head_vars)

            for mode, fn in (("fwd", forward), ("fwd+bwd", forward_backward)):
                compiled = tf.function(fn, jit_compile=settings.jit_compile)
                fns[(name, mode)] = _blocking(compiled)
                concrete[(name, mode)] = compiled.get_concrete_function()
            if name == "efficient" and num_words == 20:
                # The same forward+backward XLA-compiled (or not, if the run is).
                fns[("efficient", "other_jit")] = _blocking(
                    tf.function(forward_backward, jit_compile=not settings.jit_compile))
        taken = step_branch_taken(cfgs["efficient"].num_words, num_words)
        for mode in ("fwd", "fwd+bwd"):
            timing = harness.interleaved_compare(
                {name: fns[(name, mode)] for name in ("efficient", "straightforward")},
                warmup=1, repeats=settings.repeats)
            entry = {}
            for name in ("efficient", "straightforward"):
                analytic = head_matmul_gflop(cfgs[name], num_words, name == "efficient")
                entry[name] = dict(
                    timing[name],
                    # A matmul's backward is two matmuls of its size: 3x for fwd+bwd.
                    gflop_analytic=analytic * (1 if mode == "fwd" else 3),
                    gflop_profiler=harness.graph_flops(concrete[(name, mode)], taken) / 1e9)
            entry["speedup"] = (timing["straightforward"]["median_s"]
                                / timing["efficient"]["median_s"])
            entry["flop_ratio"] = (entry["straightforward"]["gflop_profiler"]
                                   / entry["efficient"]["gflop_profiler"])
            results[f"{num_words}_words_{mode}"] = entry
        if num_words == 20:
            xla = harness.interleaved_compare(
                {"as_run": fns[("efficient", "fwd+bwd")], "other_jit": fns[("efficient", "other_jit")]},
                warmup=1, repeats=settings.repeats)
            results["efficient_20_words_fwd+bwd_xla"] = {
                "with_xla" if settings.jit_compile else "without_xla": xla["as_run"],
                "without_xla" if settings.jit_compile else "with_xla": xla["other_jit"]}
            # Where the fwd+bwd time goes, by op type (tf.profiler trace, 1 call each).
            results["profile_20_words_fwd+bwd"] = {
                name: harness.op_profile(fns[(name, "fwd+bwd")], calls=1, top=8)
                for name in ("efficient", "straightforward")}
    cfg = cfgs["efficient"]
    results["matmul_shape_rates"] = matmul_shape_rates(cfg, settings.repeats)
    conv0 = conv0_gflop(cfg, 2048)
    results["issue_comparison_fwd_gflop"] = {
        f"{n}_words": {"analytic_with_conv0": [head_matmul_gflop(cfg, n, False) + conv0,
                                               head_matmul_gflop(cfg, n, True) + conv0],
                       "issue": list(ISSUE_HEAD_GFLOP[n])} for n in (4, 20)}
    return results


# ------------------------------------------------------------- training step


def make_train_step(model, optimizer, jit_compile: bool = False, trunk_features=None):
    """`train_lib.make_train_step` (the step `train` runs) on one device, with
    the release's recipe (`TrainConfig()`: weight decay, bias gradients
    doubled) and the batch's own size as the global batch.

    Returns (step(images, words, mask) -> total loss float32 [], the library's
    `forward_backward(images, words, mask) -> (cls_loss, reg_loss, grads,
    counts)` tf.function, no update). With `trunk_features` (a frozen trunk's
    cached outputs, `train.cache_trunk_features`), `images` are rows of it.
    """
    import tensorflow as tf

    from tf_rmi.training import train_lib
    from tf_rmi.config import TrainConfig

    train_step = train_lib.make_train_step(model, optimizer,
                                           TrainConfig(jit_compile=jit_compile),
                                           trunk_features=trunk_features)
    key = "images" if trunk_features is None else "trunk_row"

    @tf.function
    def step(images, words, mask):
        cls_loss, reg_loss, _, _ = train_step.step({key: images, "words": words}, mask)
        return cls_loss + reg_loss

    return step, train_step.forward_backward


def _train_inputs(cfg, num_words: int = 6):
    import tensorflow as tf

    size = cfg.input_size
    images = tf.random.normal([1, size, size, 3], seed=2) * 50.0
    words = tf.constant(front_padded_words(cfg.num_words, [num_words], cfg.vocab_size))
    mask = tf.cast(tf.random.uniform([1, size, size, 1], seed=3) > 0.8, tf.float32)
    return images, words, mask


def bench_train_step(settings: Settings) -> dict:
    """One D+RMI training step at 320, batch 1 (frozen ResNet-101 trunk, conv0,
    RMI head, Adam), its FLOPs and the machine's matmul rate in the same run."""
    import tensorflow as tf

    from tf_rmi.training import train_lib
    from tf_rmi.config import TrainConfig
    from tf_rmi.models.segmenter import build_model

    cfg = paper_config(settings)
    model = build_model(cfg)
    optimizer = train_lib.make_optimizer(TrainConfig(), settings.precision)
    num_words = 6
    images, words, mask = _train_inputs(cfg, num_words)
    step, forward_backward = make_train_step(model, optimizer, settings.jit_compile)
    repeats = settings.slow_repeats
    timing = harness.measure(lambda: step(images, words, mask).numpy(), warmup=1, repeats=repeats)
    # The step's own parts, to see what limits it.
    trunk = tf.function(lambda x: model.trunk(tf.cast(x, model.compute_dtype)))
    parts = harness.interleaved_compare({
        "trunk_forward": lambda: trunk(images).numpy(),
        "forward_backward": lambda: forward_backward(images, words, mask)[0].numpy()},
        warmup=1, repeats=repeats)
    taken = step_branch_taken(cfg.num_words, num_words)
    gflop_step = harness.graph_flops(
        forward_backward.get_concrete_function(images, words, mask), taken) / 1e9
    gflop_trunk = harness.graph_flops(trunk.get_concrete_function(images)) / 1e9
    # Analytic cross-check: the trunk is frozen (forward only); conv0 and the
    # head train (forward + backward = 3x their forward matmuls).
    gflop_analytic_trainable = 3 * (conv0_gflop(cfg, model.trunk.output_channels)
                                    + head_matmul_gflop(cfg, num_words, cfg.efficient_head))
    dtype = "float32" if settings.precision == "float32" else settings.precision.split("_")[1]
    matmul = harness.matmul_gflops(512 if settings.quick else 2048, repeats=max(5, repeats),
                                   dtype=dtype)
    achieved = gflop_step / timing["median_s"]
    return {
        "step": timing, "parts": parts, "words": num_words,
        "gflop_step": gflop_step, "gflop_trunk_forward": gflop_trunk,
        "gflop_trainable_analytic": gflop_analytic_trainable,
        "gflop_step_analytic": gflop_trunk + gflop_analytic_trainable,
        "achieved_gflops": achieved, "matmul": matmul,
        "fraction_of_matmul_rate": achieved / matmul["gflops"],
        "flop_count_method": (
            "tf.profiler float_operation on the traced forward+backward graph, "
            "following the head's tf.cond into the branch that runs (pad steps skipped); "
            "trunk alone profiled the same way; cross-check: trunk (profiler) + 3x the "
            "analytic conv0 and head matmuls"),
        "profile": harness.op_profile(lambda: step(images, words, mask).numpy(), calls=1, top=8),
    }


def bench_demo_step(settings: Settings, num_words: Optional[int] = None) -> dict:
    """The demo's training step (tf_rmi.recipes.demo_lib.DemoConfig: small trunk, frozen
    when the demo pretrains it, 128 px, 64-wide head) for RMI and LSTM at the
    demo's batch and at twice it, with
    expressions of the synthetic set's lengths; per-sample throughput compared
    side by side, FLOPs by the profiler and the fraction of the machine's
    matmul rate measured in the same run.

    `num_words`: the sentence length T (default: DemoConfig.num_words, the
    demo's); the expressions then run from 1 to T words. The head is unrolled over T steps,
    forward and backward, so a short T traces several times faster: for smoke
    runs (the tests), whose numbers are not the demo's."""
    import dataclasses as dc

    import numpy as np
    import tensorflow as tf

    from tf_rmi.training import train_lib
    from tf_rmi.config import TrainConfig
    from tf_rmi.recipes.demo_lib import DemoConfig, _run_config
    from tf_rmi.models.segmenter import build_model

    demo = DemoConfig()
    if settings.quick:
        demo = dc.replace(demo, input_size=64, dim=8, small_trunk_width=4)
    if num_words is not None:
        demo = dc.replace(demo, num_words=num_words)
    batches = (demo.batch_size, 2 * demo.batch_size)
    rng = np.random.default_rng(0)
    out = {"batch_sizes": list(batches), "models": {}}
    for kind in ("RMI", "LSTM"):
        run_cfg = _run_config(demo, kind, "")
        cfg = dc.replace(run_cfg.model, vocab_size=67)
        model = build_model(cfg)
        # The demo trains with its pretrained trunk frozen (train_lib.build_training_state).
        model.trunk.trainable = not demo.pretrain_trunk
        optimizer = train_lib.make_optimizer(TrainConfig(learning_rate=demo.learning_rate))
        step, forward_backward = make_train_step(model, optimizer, settings.jit_compile)
        fns, flops = {}, {}
        for batch in batches:
            size = cfg.input_size
            images = tf.random.normal([batch, size, size, 3], seed=2) * 50.0
            # The synthetic set's sentences run from 1 to 20 words (T by default).
            words = tf.constant(front_padded_words(
                cfg.num_words, list(rng.integers(1, cfg.num_words + 1, batch)), 67))
            mask = tf.cast(tf.random.uniform([batch, size, size, 1], seed=3) > 0.9, tf.float32)
            fns[f"batch_{batch}"] = (lambda i=images, w=words, m=mask: step(i, w, m).numpy())
            # Every step runs for some element of a mixed batch: count all branches.
            flops[batch] = harness.graph_flops(
                forward_backward.get_concrete_function(images, words, mask),
                lambda name: None) / 1e9  # None: the larger (compute) branch
        timings = harness.interleaved_compare(fns, warmup=1, repeats=settings.repeats)
        entry = {}
        for batch in batches:
            t = timings[f"batch_{batch}"]
            entry[f"batch_{batch}"] = dict(t, gflop_step=flops[batch],
                                           samples_per_s=batch / t["median_s"],
                                           achieved_gflops=flops[batch] / t["median_s"])
        out["models"][kind] = entry
        cached_step = None
        if demo.pretrain_trunk:  # the demo caches its frozen trunk's outputs
            size = cfg.input_size
            cached_images = tf.random.normal([demo.batch_size, size, size, 3], seed=2) * 50.0
            cached_step = make_train_step(model, optimizer, settings.jit_compile,
                                          trunk_features=model.trunk(cached_images))[0]
        out["models"][kind]["length_buckets"] = _bucketed_vs_mixed(
            step, cfg, demo.batch_size, settings, rng, cached_step)
    dtype = "float32" if settings.precision == "float32" else settings.precision.split("_")[1]
    matmul = harness.matmul_gflops(512 if settings.quick else 2048, repeats=max(5, settings.repeats),
                                   dtype=dtype)
    out["matmul"] = matmul
    for entry in out["models"].values():
        for name, value in entry.items():
            if name.startswith("batch_"):
                value["fraction_of_matmul_rate"] = value["achieved_gflops"] / matmul["gflops"]
    return out


def shapes_sentence_lengths(num_images: int, num_words: int) -> List[int]:
    """Words per expression (capped at T = `num_words`) of the demo's synthetic
    training images 0..num_images-1, as the records hold them."""
    from tf_rmi.data import shapes, text
    from tf_rmi.recipes.demo_lib import DemoConfig

    args = DemoConfig().shapes_args(num_train_images=num_images)
    source = shapes.ShapesSource(seed=0, **args)
    return [min(len(text.tokenize(expr.sentence)), num_words)
            for expr in source.expressions("train")]


def length_batches(lengths, batch: int, count: int, bucketed: bool, num_words: int, rng):
    """`count` batches of `batch` sentence lengths drawn from `lengths`: mixed
    (any lengths, as `train_dataset`) or each from one bucket of
    `pipeline.length_bucket_boundaries` (as with `bucket_by_length`); a
    bucket is chosen with the probability of its share of the sentences."""
    import numpy as np

    from tf_rmi.data.pipeline import length_bucket_boundaries

    lengths = np.asarray(lengths)
    buckets = np.searchsorted(length_bucket_boundaries(num_words), lengths, side="right")
    batches = []
    for _ in range(count):
        pool = lengths
        if bucketed:
            pool = lengths[buckets == buckets[rng.integers(len(lengths))]]
        batches.append([int(n) for n in rng.choice(pool, batch)])
    return batches


def _bucketed_vs_mixed(step, cfg, batch: int, settings: Settings, rng,
                       cached_step=None) -> dict:
    """Mean time per training step over the same number of batches of the
    synthetic set's sentence lengths, mixed vs bucketed by length
    (`train.bucket_by_length`), interleaved. The head runs a step while any
    sentence of the batch has a word there, so a batch costs its longest
    sentence's steps. With `cached_step` (the step on cached trunk outputs,
    `train.cache_trunk_features`), also "bucketed_cached": the bucketed
    batches without the trunk's forward pass."""
    import tensorflow as tf

    lengths = shapes_sentence_lengths(20 if settings.quick else 150, cfg.num_words)
    count = 4 if settings.quick else 24
    size = cfg.input_size
    images = tf.random.normal([batch, size, size, 3], seed=2) * 50.0
    mask = tf.cast(tf.random.uniform([batch, size, size, 1], seed=3) > 0.9, tf.float32)
    fns, longest = {}, {}
    for name, bucketed in (("mixed", False), ("bucketed", True)):
        batches = length_batches(lengths, batch, count, bucketed, cfg.num_words, rng)
        words = [tf.constant(front_padded_words(cfg.num_words, b, cfg.vocab_size))
                 for b in batches]
        longest[name] = sum(max(b) for b in batches) / count
        fns[name] = (lambda words=words: [step(images, w, mask).numpy() for w in words])
        if bucketed and cached_step is not None:
            rows = tf.range(batch)
            longest["bucketed_cached"] = longest[name]
            fns["bucketed_cached"] = (lambda words=words: [cached_step(rows, w, mask).numpy()
                                                           for w in words])
    timings = harness.interleaved_compare(fns, warmup=1, repeats=settings.repeats)
    out = {name: dict(step_s=timings[name]["median_s"] / count,
                      mean_longest_sentence=longest[name]) for name in fns}
    out["speedup"] = timings["mixed"]["median_s"] / timings["bucketed"]["median_s"]
    if "bucketed_cached" in timings:
        out["speedup_cached"] = (timings["mixed"]["median_s"]
                                 / timings["bucketed_cached"]["median_s"])
    out["batches"] = count
    return out


# ---------------------------------------------------------------- evaluation


def _shapes_eval_set(tmp: str, settings: Settings) -> str:
    """A small synthetic test split in TFRecords (the real format) under `tmp`."""
    from tf_rmi.data import preprocess_lib

    out = os.path.join(tmp, "tfrecords")
    preprocess_lib.preprocess("shapes", None, out, splits=("train", "test"), num_workers=1,
                              progress=False,
                              image_size=64 if settings.quick else 320,
                              shapes_args={"num_train_images": 2, "num_val_images": 0,
                                           "num_test_images": 2})
    return out


def bench_eval(settings: Settings) -> dict:
    """Expressions/s at 7 expressions per image, shared trunk (one trunk pass,
    the head batched over the 7) vs per expression (7 full calls); the model
    calls alone, their parts, and eval_lib.evaluate end to end on a generated
    TFRecord split."""
    import numpy as np

    from tf_rmi.evaluation import eval_lib
    from tf_rmi.config import DataConfig, EvalConfig, RunConfig
    from tf_rmi.models.segmenter import build_model

    cfg = paper_config(settings)
    model = build_model(cfg)
    runner = eval_lib.ModelRunner(model)
    size = cfg.input_size
    image = np.random.RandomState(0).randn(size, size, 3).astype(np.float32) * 50
    lengths = [3, 4, 5, 6, 7, 8, 9]  # mean 6 words
    words = front_padded_words(cfg.num_words, lengths, cfg.vocab_size)
    repeats = settings.slow_repeats
    timing = harness.interleaved_compare({
        "shared_trunk": lambda: runner.shared_trunk(image, words),
        "per_expression": lambda: runner.per_expression(image, words)},
        warmup=1, repeats=repeats)
    out = {name: dict(t, expressions_per_s=len(lengths) / t["median_s"])
           for name, t in timing.items()}
    out["expression_lengths"] = lengths
    out["speedup"] = timing["per_expression"]["median_s"] / timing["shared_trunk"]["median_s"]

    visual = runner.visual(image[None])
    index = np.zeros(len(lengths), np.int32)
    one = words[3:4]  # a 6-word expression
    out["parts"] = harness.interleaved_compare({
        "visual_features_1_image": lambda: runner.visual(image[None]).numpy(),
        # What shared_trunk runs: each expression only on its own steps.
        "segment_one_image_7_expressions": lambda: runner.segment_one_image(visual,
                                                                             words).numpy(),
        # The batched head before: every step up to the longest expression for all 7.
        "segment_7_expressions_batched": lambda: runner.segment(visual, words, index).numpy(),
        "segment_1_expression_6_words": lambda: runner.segment(visual, one, index[:1]).numpy(),
        "full_call_1_expression_6_words": lambda: runner.full(image[None], one).numpy()},
        warmup=1, repeats=repeats)
    out["profile_shared_trunk"] = harness.op_profile(lambda: runner.shared_trunk(image, words),
                                                     calls=1, top=8)

    with tempfile.TemporaryDirectory() as tmp:
        tfrecords = _shapes_eval_set(tmp, settings)
        run_config = RunConfig(data=DataConfig(dataset="shapes", tfrecord_dir=tfrecords),
                               model=cfg)
        counts, stages = {}, {}

        def evaluate(shared: bool, crf: bool = False):
            # The runner traced above: tracing stays out of the timed repeats.
            result = eval_lib.evaluate(model, run_config,
                                       EvalConfig(split="test", shared_trunk=shared, crf=crf),
                                       progress=False, runner=runner)
            counts[shared] = result["expressions"]
            stages.setdefault((shared, crf), []).append(result["stage_seconds"])

        loop = harness.interleaved_compare({"shared_trunk": lambda: evaluate(True),
                                            "per_expression": lambda: evaluate(False)},
                                           warmup=1, repeats=repeats)
        # With DenseCRF (the original's settings), shared trunk: fewer repeats.
        with_crf = harness.measure(lambda: evaluate(True, crf=True), warmup=0,
                                   repeats=1 if settings.quick else 2)
    expressions = counts[True]

    def median_stages(runs):
        return {k: sorted(r[k] for r in runs)[len(runs) // 2] for k in runs[0]}

    out["end_to_end"] = {
        "expressions": expressions, "images": 2,
        **{name: dict(t, expressions_per_s=expressions / t["median_s"]) for name, t in loop.items()},
        "speedup": loop["per_expression"]["median_s"] / loop["shared_trunk"]["median_s"],
        "shared_trunk_crf": dict(with_crf, expressions_per_s=expressions / with_crf["median_s"]),
        # Wall seconds per stage of one pass over the split (median over the timed runs).
        "stage_seconds": {"shared_trunk": median_stages(stages[(True, False)][1:]),
                          "per_expression": median_stages(stages[(False, False)][1:]),
                          "shared_trunk_crf": median_stages(stages[(True, True)])}}
    return out


# ------------------------------------------------------------- preprocessing


def _tree_digest(root: str) -> str:
    """sha256 over the relative names and bytes of the shard files under `root`."""
    digest = hashlib.sha256()
    for dirpath, _, files in sorted(os.walk(root)):
        for name in sorted(files):
            if name.endswith(".tfrecord"):
                path = os.path.join(dirpath, name)
                digest.update(os.path.relpath(path, root).encode())
                with open(path, "rb") as f:
                    digest.update(f.read())
    return digest.hexdigest()


def _preprocess_child(settings: Settings) -> dict:
    """Runs in a fresh process: 1 vs 2 workers, interleaved, with CPU time split
    into the parent's and the workers'."""
    from tf_rmi.data import preprocess_lib
    from tf_rmi.data.shapes import ShapesSource

    images = 6 if settings.quick else 40
    shapes_args = {"num_train_images": images, "num_val_images": 0, "num_test_images": 0}
    digests: Dict[int, set] = {1: set(), 2: set()}
    cpu: Dict[int, List[tuple]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        def run(workers: int) -> None:
            out = os.path.join(tmp, f"w{workers}-{time.monotonic_ns()}")
            self0 = resource.getrusage(resource.RUSAGE_SELF)
            child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            preprocess_lib.preprocess("shapes", None, out, splits=("train",),
                                      num_workers=workers, num_shards=4, progress=False,
                                      image_size=64 if settings.quick else 320,
                                      shapes_args=shapes_args)
            self1 = resource.getrusage(resource.RUSAGE_SELF)
            child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu[workers].append(
                (self1.ru_utime + self1.ru_stime - self0.ru_utime - self0.ru_stime,
                 child1.ru_utime + child1.ru_stime - child0.ru_utime - child0.ru_stime))
            digests[workers].add(_tree_digest(out))

        timing = harness.interleaved_compare({"1_worker": lambda: run(1),
                                              "2_workers": lambda: run(2)},
                                             warmup=1, repeats=settings.slow_repeats)
    count = len(ShapesSource(**shapes_args).expressions("train"))
    out = {"expressions": count, "images": images, "shards": 4,
           "same_output": len(digests[1] | digests[2]) == 1,
           "speedup": timing["1_worker"]["median_s"] / timing["2_workers"]["median_s"]}
    for workers, name in ((1, "1_worker"), (2, "2_workers")):
        parent_cpu = sorted(c[0] for c in cpu[workers])[len(cpu[workers]) // 2]
        worker_cpu = sorted(c[1] for c in cpu[workers])[len(cpu[workers]) // 2]
        out[name] = dict(timing[name], expressions_per_s=count / timing[name]["median_s"],
                         parent_cpu_s=parent_cpu, worker_cpu_s=worker_cpu)
    return out


def bench_preprocess(settings: Settings) -> dict:
    """Synthetic-set preprocessing (320x320 training records) with 1 and 2
    workers; the outputs must be byte-identical."""
    return _run_child("preprocess", settings)


# ------------------------------------------------------------ input pipeline

# Samples/s a GPU would ask of the input pipeline for D+RMI training, projected
# from the training step's FLOPs (benchmarks' train_step: ~235 GFLOP per sample
# at 320 px, 6 words): at 100-400 TFLOP/s achieved (an H100/H200-class GPU in
# TF32 / bfloat16 at 15-40% of peak), 235 GFLOP per sample is ~425-1700
# samples/s; batch-1 training (the original's) is bound by the 20-step
# recurrence's kernel launches instead, far below that.
GPU_PROJECTED_SAMPLES_PER_S = (425.0, 1700.0)


def _input_pipeline_child(settings: Settings) -> dict:
    """Runs in a fresh process: training records/s of `pipeline.train_dataset`
    at 320 px (PNG decode, Caffe preprocessing, shuffle, batch), and the CPU
    seconds the process spends per record (all tf.data threads), so records
    per second per CPU core; the same for the parse (decode) stage alone."""
    import tensorflow as tf

    from tf_rmi.config import DataConfig, ModelConfig
    from tf_rmi.data import pipeline, preprocess_lib

    size = 64 if settings.quick else 320
    num_words = ModelConfig().num_words  # preprocess's default T too
    images = 4 if settings.quick else 20
    records = 40 if settings.quick else 400
    warmup = 10 if settings.quick else 50
    out = {"input_size": size, "records_timed": records}
    with tempfile.TemporaryDirectory() as tmp:
        root = os.path.join(tmp, "tfrecords")
        preprocess_lib.preprocess("shapes", None, root, splits=("train",), num_workers=1,
                                  progress=False, image_size=size, num_words=num_words,
                                  shapes_args={"num_train_images": images, "num_val_images": 0,
                                               "num_test_images": 0})
        data_cfg = DataConfig(dataset="shapes", tfrecord_dir=root)
        shape = dict(input_size=size, num_words=num_words)

        def measure_stream(dataset, per_element: int) -> dict:
            it = iter(dataset)
            for _ in range(warmup // per_element):
                tf.nest.map_structure(lambda t: t.numpy(), next(it))
            r0 = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            for _ in range(records // per_element):
                tf.nest.map_structure(lambda t: t.numpy(), next(it))
            wall = time.perf_counter() - start
            r1 = resource.getrusage(resource.RUSAGE_SELF)
            cpu = r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime
            n = (records // per_element) * per_element
            return {"wall_s": wall, "cpu_s": cpu, "records_per_s": n / wall,
                    "records_per_cpu_core_s": n / max(cpu, 1e-9)}

        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for batch in (1, 8):
                out[f"train_dataset_batch_{batch}"] = measure_stream(
                    pipeline.train_dataset(data_cfg, "train", batch, seed=0, **shape), batch)
            out["parse_only"] = measure_stream(
                pipeline.train_examples(data_cfg, "train", seed=0, **shape), 1)
    per_core = out["train_dataset_batch_8"]["records_per_cpu_core_s"]
    out["gpu_projected_samples_per_s"] = list(GPU_PROJECTED_SAMPLES_PER_S)
    out["cores_needed_for_projection"] = [r / per_core for r in GPU_PROJECTED_SAMPLES_PER_S]
    return out


def bench_input_pipeline(settings: Settings) -> dict:
    """Training input pipeline records/s per CPU core at 320 px, and how many
    cores the projected GPU step rate would need."""
    return _run_child("input_pipeline", settings)


# -------------------------------------------------------------------- memory


def _memory_child(settings: Settings, kind: str) -> dict:
    """Runs in a fresh process: 3 D+RMI training steps, or shared-trunk
    evaluation of 3 images x 7 expressions; reports the peak resident set."""
    import numpy as np

    from tf_rmi.training import train_lib
    from tf_rmi.config import TrainConfig
    from tf_rmi.models.segmenter import build_model

    cfg = paper_config(settings)
    model = build_model(cfg)
    if kind == "train":
        optimizer = train_lib.make_optimizer(TrainConfig(), settings.precision)
        step, _ = make_train_step(model, optimizer, settings.jit_compile)
        images, words, mask = _train_inputs(cfg)
        for _ in range(3):
            step(images, words, mask).numpy()
    else:
        from tf_rmi.evaluation.eval_lib import ModelRunner

        runner = ModelRunner(model)
        words = front_padded_words(cfg.num_words, [3, 4, 5, 6, 7, 8, 9], cfg.vocab_size)
        image = np.random.RandomState(0).randn(cfg.input_size, cfg.input_size, 3)
        for _ in range(3):
            runner.shared_trunk(image.astype(np.float32), words)
    return {"peak_rss_gib": peak_rss_gib()}


def peak_rss_gib() -> float:
    """This process's peak resident set in GiB: VmHWM of /proc/self/status (the
    high-water mark of the current address space) where there is one.
    getrusage's ru_maxrss is only the fallback: Linux carries it over from the
    address space an exec replaces, so in a child started by a large parent
    (the benchmark runner, after the in-process benchmarks) it reports the
    parent's size at the fork, not the child's."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2 ** 20  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20  # KiB on Linux


def bench_memory(settings: Settings) -> dict:
    """Peak resident memory (`peak_rss_gib` of a fresh child process) of D+RMI training
    at batch 1 and of evaluation."""
    return {f"{kind}_peak_rss_gib": _run_child(f"memory_{kind}", settings)["peak_rss_gib"]
            for kind in ("train", "eval")}


# -------------------------------------------------------------- child runs


def _run_child(name: str, settings: Settings) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.suite", name, json.dumps(dataclasses.asdict(settings))],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=1800)
    if result.returncode != 0:
        raise RuntimeError(f"benchmark child '{name}' failed (exit {result.returncode}):\n"
                           f"{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def _child_main(argv: List[str]) -> None:
    name, settings = argv[0], Settings(**json.loads(argv[1]))
    apply_precision(settings)
    if name == "preprocess":
        result = _preprocess_child(settings)
    elif name == "input_pipeline":
        result = _input_pipeline_child(settings)
    elif name.startswith("memory_"):
        result = _memory_child(settings, name[len("memory_"):])
    else:
        raise SystemExit(f"unknown benchmark child {name!r}")
    print(json.dumps(result))


# ----------------------------------------------------------------- the suite

BENCHMARKS = {"head": bench_head, "train_step": bench_train_step, "demo_step": bench_demo_step,
              "eval": bench_eval,
              "preprocess": bench_preprocess, "input_pipeline": bench_input_pipeline,
              "memory": bench_memory}


def run(names: List[str], settings: Settings, command: str = "",
        log: Callable[[str], None] = print) -> dict:
    """Runs the named benchmarks in order; returns the results dict."""
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"Unknown benchmarks {unknown}: choose from {sorted(BENCHMARKS)}")
    apply_precision(settings)
    results = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": harness.machine(), "settings": dataclasses.asdict(settings),
               "command": command,
               # Other work on the machine skews timings: recorded, 1/5/15-minute averages.
               "load_average_start": list(os.getloadavg())}
    for name in names:
        log(f"== {name}")
        start = time.monotonic()
        results[name] = BENCHMARKS[name](settings)
        log(f"   done in {time.monotonic() - start:.0f} s")
    results["load_average_end"] = list(os.getloadavg())
    results["targets"] = target_rows(results)
    return results


def target_rows(results: dict) -> List[dict]:
    """The issue's targets, with the measured values present in `results`."""
    rows = []

    def add(name, value, target, higher=True, unit="x"):
        rows.append({"target": name, "value": value, "goal": target, "unit": unit,
                     "met": harness.target_verdict(value, target, higher)})

    if "head" in results:
        add("head fwd+bwd speedup, 4 words", results["head"]["4_words_fwd+bwd"]["speedup"], 3.3)
        add("head fwd+bwd speedup, 20 words", results["head"]["20_words_fwd+bwd"]["speedup"], 5.0)
    if "train_step" in results:
        add("training step, fraction of matmul rate",
            results["train_step"]["fraction_of_matmul_rate"], 0.6, unit="")
    if "eval" in results:
        add("evaluation speedup, shared trunk (model calls)", results["eval"]["speedup"], 4.0)
    if "preprocess" in results:
        add("preprocessing speedup, 2 workers", results["preprocess"]["speedup"], 1.8)
    if "memory" in results:
        add("training peak memory (GiB)", results["memory"]["train_peak_rss_gib"], 6.0,
            higher=False, unit=" GiB")
    return rows


def result_basename(results: dict) -> str:
    """`<date>-<host kind>[-quick]`: the JSON file's name without extension."""
    stamp = results["date"][:19].replace(":", "")
    quick = "-quick" if results["settings"]["quick"] else ""
    return f"{stamp}-{results['machine']['host_kind']}{quick}"


def _fmt(t: dict) -> str:
    return f"{t['median_s']:.3f} [{t['min_s']:.3f}, {t['max_s']:.3f}]"


def summary_markdown(results: dict) -> str:
    """The results as Markdown: the targets first, then each benchmark."""
    s = results["settings"]
    lines = [f"# Benchmarks, {results['date']}", "",
             f"Machine: {results['machine']}; load average (1/5/15 min) at the start "
             f"{results.get('load_average_start')}, at the end {results.get('load_average_end')}", "",
             f"Command: `{results['command']}`; precision {s['precision']}, "
             f"jit_compile {s['jit_compile']}, {s['repeats']} repeats "
             f"({s['slow_repeats']} for the slow ones){', QUICK (tiny sizes)' if s['quick'] else ''}."
             " Times: median [min, max] seconds.", ""]
    if results.get("targets"):
        rows = [[r["target"], f"{r['value']:.2f}{r['unit']}", f"{r['goal']}{r['unit']}", r["met"]]
                for r in results["targets"]]
        lines += ["## Targets", "", harness.markdown_table(rows, ["target", "measured", "goal", "met?"])]
    if "head" in results:
        rows = []
        for key in ("4_words_fwd", "4_words_fwd+bwd", "20_words_fwd", "20_words_fwd+bwd"):
            r = results["head"][key]
            rows.append([key.replace("_", " "), _fmt(r["efficient"]), _fmt(r["straightforward"]),
                         f"{r['speedup']:.2f}x",
                         f"{r['efficient']['gflop_profiler']:.1f} / "
                         f"{r['straightforward']['gflop_profiler']:.1f} ({r['flop_ratio']:.1f}x)",
                         f"{r['efficient']['gflop_analytic']:.1f} / "
                         f"{r['straightforward']['gflop_analytic']:.1f}"])
        lines += ["## Multimodal LSTM head (40x40, batch 1, from visual features)", "",
                  harness.markdown_table(rows, [
                      "case", "efficient s", "straightforward s", "speedup",
                      "GFLOP profiler eff / straight", "GFLOP matmuls (analytic)"])]
        issue = results["head"]["issue_comparison_fwd_gflop"]
        lines += ["Forward GFLOP with conv0 added, straightforward / efficient (the issue's): "
                  + "; ".join(f"{k.replace('_', ' ')}: {v['analytic_with_conv0'][0]:.1f} / "
                              f"{v['analytic_with_conv0'][1]:.1f} ({v['issue'][0]:.0f} / "
                              f"{v['issue'][1]:.0f})" for k, v in issue.items()), ""]
        xla = results["head"].get("efficient_20_words_fwd+bwd_xla")
        if xla:
            lines += [f"- efficient fwd+bwd at 20 words, XLA vs not (interleaved): "
                      f"{_fmt(xla['with_xla'])} s vs {_fmt(xla['without_xla'])} s"]
        rates = results["head"].get("matmul_shape_rates")
        if rates:
            lines += ["- per-step matmul shapes alone (GFLOP/s): " + ", ".join(
                f"{k.replace('_', ' ')} {v['gflops']:.0f}" for k, v in rates.items())]
        for name, prof in results["head"]["profile_20_words_fwd+bwd"].items():
            ops = ", ".join(f"{k} {100 * share:.0f}%" for k, _, share in prof["ops"][:6])
            lines += [f"- profile, {name} fwd+bwd at 20 words ({prof['wall_seconds']:.2f} s wall, "
                      f"{prof['op_seconds']:.2f} s op time over threads): {ops}"]
        lines.append("")
    if "train_step" in results:
        r = results["train_step"]
        parts = r["parts"]
        ops = ", ".join(f"{k} {100 * share:.0f}%" for k, _, share in r["profile"]["ops"][:6])
        lines += ["## D+RMI training step (320x320, batch 1)", "",
                  f"- step {_fmt(r['step'])} s; {r['gflop_step']:.1f} GFLOP per step by the profiler "
                  f"(trunk forward {r['gflop_trunk_forward']:.1f}; analytic cross-check "
                  f"{r['gflop_step_analytic']:.1f}; {r['words']} words); "
                  f"{r['achieved_gflops']:.1f} GFLOP/s achieved",
                  f"- {r['matmul']['dtype']} matmul ({r['matmul']['n']}^2): "
                  f"{r['matmul']['gflops']:.1f} GFLOP/s; fraction of that rate: "
                  f"{100 * r['fraction_of_matmul_rate']:.0f}%",
                  f"- parts: trunk forward {_fmt(parts['trunk_forward'])} s, forward+backward "
                  f"(no optimizer) {_fmt(parts['forward_backward'])} s",
                  f"- profile by op type: {ops}",
                  f"- FLOPs counted by: {r['flop_count_method']}", ""]
    if "demo_step" in results:
        r = results["demo_step"]
        lines += ["## The demo's training step (tf_rmi.recipes.demo_lib.DemoConfig)", ""]
        for kind, entry in r["models"].items():
            timed = ", ".join(f"batch {k.split('_')[1]} {1000 * v['median_s']:.0f} ms "
                              f"({100 * v['fraction_of_matmul_rate']:.0f}% of the matmul rate)"
                              for k, v in entry.items() if k.startswith("batch_"))
            lines.append(f"- {kind}: {timed}")
            buckets = entry.get("length_buckets")
            if buckets:
                lines.append(
                    f"- {kind}, {buckets['batches']} batches of the synthetic set's sentence "
                    f"lengths: mixed {1000 * buckets['mixed']['step_s']:.0f} ms per step "
                    f"(longest sentence {buckets['mixed']['mean_longest_sentence']:.1f} words "
                    f"on average), bucketed by length {1000 * buckets['bucketed']['step_s']:.0f} "
                    f"ms ({buckets['bucketed']['mean_longest_sentence']:.1f} words): "
                    f"{buckets['speedup']:.2f}x"
                    + (f"; bucketed on cached trunk outputs "
                       f"{1000 * buckets['bucketed_cached']['step_s']:.0f} ms: "
                       f"{buckets['speedup_cached']:.2f}x" if "speedup_cached" in buckets
                       else ""))
        lines.append("")
    if "eval" in results:
        r = results["eval"]
        e2e = r["end_to_end"]
        rows = [[name.replace("_", " "), _fmt(t)] for name, t in r["parts"].items()]
        lines += ["## Evaluation, 7 expressions per image (D+RMI, 320)", "",
                  f"- model calls, lengths {r['expression_lengths']}: shared trunk "
                  f"{r['shared_trunk']['expressions_per_s']:.2f} expr/s, per expression "
                  f"{r['per_expression']['expressions_per_s']:.2f} expr/s: {r['speedup']:.2f}x",
                  f"- eval_lib.evaluate end to end ({e2e['expressions']} expressions of "
                  f"{e2e['images']} synthetic images, scoring included): shared "
                  f"{e2e['shared_trunk']['expressions_per_s']:.2f} expr/s, per expression "
                  f"{e2e['per_expression']['expressions_per_s']:.2f} expr/s: {e2e['speedup']:.2f}x",
                  f"- the same with DenseCRF (shared trunk): "
                  f"{e2e['shared_trunk_crf']['expressions_per_s']:.2f} expr/s",
                  "", harness.markdown_table(rows, ["part", "seconds"])]
        stage_rows = [[name.replace("_", " ")] + [f"{e2e['stage_seconds'][k].get(name, 0.0):.3f}"
                                                  for k in ("shared_trunk", "per_expression",
                                                            "shared_trunk_crf")]
                      for name in e2e["stage_seconds"]["shared_trunk_crf"]]
        lines += ["Where the time of one pass over the split goes (wall seconds per stage):", "",
                  harness.markdown_table(stage_rows, ["stage", "shared trunk", "per expression",
                                                      "shared trunk + CRF"])]
        prof = r["profile_shared_trunk"]
        lines += ["- profile of one shared-trunk call (7 expressions) by op type: "
                  + ", ".join(f"{k} {100 * share:.0f}%" for k, _, share in prof["ops"][:6]), ""]
    if "preprocess" in results:
        r = results["preprocess"]
        lines += ["## Preprocessing (synthetic set, 320x320 training records)", "",
                  f"- {r['expressions']} expressions, {r['shards']} shards; same output bytes: "
                  f"{r['same_output']}",
                  f"- 1 worker {r['1_worker']['expressions_per_s']:.1f} expr/s "
                  f"({_fmt(r['1_worker'])} s; CPU: parent {r['1_worker']['parent_cpu_s']:.2f} s, "
                  f"workers {r['1_worker']['worker_cpu_s']:.2f} s)",
                  f"- 2 workers {r['2_workers']['expressions_per_s']:.1f} expr/s "
                  f"({_fmt(r['2_workers'])} s; CPU: parent {r['2_workers']['parent_cpu_s']:.2f} s, "
                  f"workers {r['2_workers']['worker_cpu_s']:.2f} s): {r['speedup']:.2f}x", ""]
    if "input_pipeline" in results:
        r = results["input_pipeline"]
        lines += [f"## Training input pipeline ({r['input_size']} px, synthetic records)", ""]
        for key in ("train_dataset_batch_1", "train_dataset_batch_8", "parse_only"):
            x = r[key]
            lines.append(f"- {key.replace('_', ' ')}: {x['records_per_s']:.0f} records/s wall, "
                         f"{x['records_per_cpu_core_s']:.0f} records per CPU-core second")
        lo, hi = r["cores_needed_for_projection"]
        plo, phi = r["gpu_projected_samples_per_s"]
        lines += [f"- a GPU at the projected {plo:.0f}-{phi:.0f} samples/s would need "
                  f"{lo:.1f}-{hi:.1f} CPU cores for this pipeline", ""]
    if "memory" in results:
        r = results["memory"]
        lines += ["## Peak resident memory", "",
                  f"- D+RMI training (batch 1, 3 steps): {r['train_peak_rss_gib']:.2f} GiB; "
                  f"evaluation (shared trunk, 3 x 7 expressions): {r['eval_peak_rss_gib']:.2f} GiB", ""]
    return "\n".join(lines) + "\n"


def write_results(results: dict, output_dir: str) -> Dict[str, str]:
    """Writes `<date>-<host kind>.json` and `latest.md` (`latest-quick.md` for
    quick runs), each atomically; returns their paths."""
    base = result_basename(results)
    json_path = os.path.join(output_dir, base + ".json")
    md_path = os.path.join(output_dir, "latest-quick.md" if results["settings"]["quick"]
                           else "latest.md")
    harness.write_json(json_path, results)
    harness.write_text(md_path, summary_markdown(results))
    return {"json": json_path, "markdown": md_path}


if __name__ == "__main__":
    _child_main(sys.argv[1:])
