"""One-shot GPU check: run by `benchmarks/gpu_check.sh` (see benchmarks/README.md).

On one GPU, in this order, each part timed with the method of `harness.py`
(warm-up, repeats, median):

1. the matmul rate (float32 -- TF32 where the GPU has it -- and bfloat16);
2. the D+RMI training step at 320 px (frozen ResNet-101 trunk, Adam, the
   release's loss) in float32 (batch 1 and `--batch`), mixed_bfloat16 and
   float32 with XLA (`jit_compile`) (both at `--batch`), the first call
   (tracing, compiling) timed apart;
3. agreement: the loss and gradients of one forward+backward (at `--batch`)
   on the GPU against the same computation on the CPU (same weights and
   inputs), as a relative error (||gpu - cpu|| / ||cpu|| over all gradients),
   with a tolerance set by the precision (TF32 matmuls for float32 on Ampere
   and newer; bfloat16 has an 8-bit mantissa);
4. evaluation expressions/s (7 expressions per image: shared trunk vs per
   expression).

Prints a short table last and writes `gpu_check-<host kind>.json` under
`--output_dir`. Needs no network and installs nothing: it uses the project's
model code with randomly initialised weights (the trunk's pretrained weights
do not change the timing). `--dry_run` runs every part at tiny sizes on
whatever device there is (a CPU), to check the script itself; without it the
script refuses to run where there is no GPU.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import sys
import time
from typing import Callable, Dict, List

from absl import app, flags

from benchmarks import harness, suite

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", None, "Where the JSON goes (required).")
flags.DEFINE_bool("dry_run", False, "Tiny sizes on any device (a CPU): checks the script only.")
flags.DEFINE_integer("repeats", 10, "Timed repeats per measurement (after the warm-up).",
                     lower_bound=1)
flags.DEFINE_integer("batch", 8, "The larger training batch (besides batch 1).", lower_bound=1)
flags.DEFINE_float("budget_s", 420.0, "Parts still to run are skipped (and listed) once this "
                   "many seconds have passed, so that the whole check ends within ~8 minutes.")

# Relative error of the GPU's loss and gradients against the CPU's, by precision.
# float32: TF32 matmuls (10-bit mantissa) through a ResNet-101 and 20-step recurrence.
TOLERANCE = {"float32": 2e-2, "mixed_bfloat16": 1e-1, "float32_xla": 2e-2}


def _set_policy(precision: str) -> None:
    import keras

    keras.mixed_precision.set_global_policy(precision)


def _model_config(dry_run: bool):
    # The dry run also shortens the sentence (4 steps): tracing the unrolled
    # head's gradient is most of a tiny run's time.
    overrides = {"num_words": 3} if dry_run else {}
    return suite.paper_config(suite.Settings(quick=dry_run), **overrides)


def _build(cfg, precision: str, weights=None):
    from tf_rmi.models.segmenter import build_model

    _set_policy(precision)
    try:
        model = build_model(cfg)
    finally:
        _set_policy("float32")
    if weights is not None:
        model.set_weights(weights)
    return model


def _inputs(cfg, batch: int, num_words: int = 6):
    import tensorflow as tf

    size = cfg.input_size
    images = tf.random.stateless_normal([batch, size, size, 3], seed=[2, batch]) * 50.0
    lengths = [max(1, (num_words + i) % cfg.num_words) for i in range(batch)]
    words = tf.constant(suite.front_padded_words(cfg.num_words, lengths, cfg.vocab_size))
    mask = tf.cast(tf.random.stateless_uniform([batch, size, size, 1], seed=[3, batch]) > 0.8,
                   tf.float32)
    return images, words, mask


def _flat_grads(grads) -> "np.ndarray":  # noqa: F821
    import numpy as np
    import tensorflow as tf

    return np.concatenate([np.ravel(tf.convert_to_tensor(g).numpy().astype(np.float64))
                           for g in grads if g is not None])


def _relative_error(a, b) -> float:
    import numpy as np

    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def run_check(dry_run: bool, repeats: int, batch: int, budget_s: float,
              log: Callable[[str], None] = print) -> dict:
    import numpy as np
    import tensorflow as tf

    from tf_rmi.training import train_lib
    from tf_rmi.config import TrainConfig
    from tf_rmi.evaluation.eval_lib import ModelRunner

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus and not dry_run:
        raise SystemExit("gpu_check: no GPU visible to TensorFlow (run with --dry_run to check "
                         "the script on a CPU)")
    start = time.monotonic()
    skipped: List[str] = []

    def in_budget(part: str) -> bool:
        if time.monotonic() - start > budget_s:
            skipped.append(part)
            log(f"   skipped {part}: past the {budget_s:.0f} s budget")
            return False
        return True

    device = "/GPU:0" if gpus else "/CPU:0"
    results: Dict[str, object] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": harness.machine(), "dry_run": dry_run, "repeats": repeats,
        "device": device, "command": "benchmarks/gpu_check.sh " + " ".join(sys.argv[1:])}
    if gpus:
        results["gpu_details"] = {k: str(v) for k, v in
                                  tf.config.experimental.get_device_details(gpus[0]).items()}

    # 1. matmul rate.
    n = 256 if dry_run else 8192
    results["matmul"] = {}
    for dtype in ("float32", "bfloat16"):
        log(f"== matmul {dtype} {n}^2")
        with tf.device(device):
            results["matmul"][dtype] = harness.matmul_gflops(n, warmup=2, repeats=repeats,
                                                             dtype=dtype)

    # 2. training steps.
    cfg = _model_config(dry_run)
    reference = _build(cfg, "float32")
    weights = reference.get_weights()
    tcfg = TrainConfig()
    variants = [("float32", "float32", False), ("mixed_bfloat16", "mixed_bfloat16", False),
                ("float32_xla", "float32", True)]
    big = 2 if dry_run else batch
    results["train_step"] = {}
    forward_backward_fns = {}
    for name, precision, jit in variants:
        if not in_budget(f"train_step {name}"):
            continue
        log(f"== training step {name}")
        with tf.device(device):
            model = _build(cfg, precision, weights)
            optimizer = train_lib.make_optimizer(tcfg, precision)
            step, forward_backward = suite.make_train_step(model, optimizer, jit)
            forward_backward_fns[name] = (model, forward_backward)
            entry = {}
            # Each batch size is a new trace (tens of seconds at paper size):
            # batch 1 for float32 only.
            for b in ((1, big) if name == "float32" and not dry_run else (big,)):
                images, words, mask = _inputs(cfg, b)
                compile_start = time.perf_counter()
                step(images, words, mask).numpy()  # trace / compile
                entry[f"first_call_s_batch_{b}"] = time.perf_counter() - compile_start
                t = harness.measure(lambda: step(images, words, mask).numpy(), warmup=1,
                                    repeats=repeats)
                entry[f"batch_{b}"] = dict(t, samples_per_s=b / t["median_s"])
        results["train_step"][name] = entry

    # 3. agreement with the CPU: one forward+backward, same weights and inputs.
    results["agreement"] = {}
    if in_budget("agreement"):
        log("== agreement with the CPU")
        images, words, mask = _inputs(cfg, big)
        with tf.device("/CPU:0"):
            cpu_model = _build(cfg, "float32", weights)
            _, cpu_fb = suite.make_train_step(cpu_model, train_lib.make_optimizer(tcfg), False)
            cpu_cls, cpu_reg, cpu_grads, _ = cpu_fb(images, words, mask)
            cpu_loss = cpu_cls + cpu_reg
            cpu_flat = _flat_grads(cpu_grads)
        for name, (model, fb) in forward_backward_fns.items():
            model.set_weights(weights)  # the timed steps trained it
            with tf.device(device):
                cls_loss, reg_loss, grads, _ = fb(images, words, mask)
                loss = cls_loss + reg_loss
            err = _relative_error(_flat_grads(grads), cpu_flat)
            loss_err = abs(float(loss) - float(cpu_loss)) / max(abs(float(cpu_loss)), 1e-30)
            results["agreement"][name] = {
                "loss_gpu": float(loss), "loss_cpu": float(cpu_loss),
                "loss_relative_error": loss_err, "grad_relative_error": err,
                "tolerance": TOLERANCE[name],
                "batch": big,
                "ok": bool(err <= TOLERANCE[name] and loss_err <= TOLERANCE[name])}
    # 4. evaluation, 7 expressions per image.
    if in_budget("eval"):
        log("== evaluation, 7 expressions per image")
        with tf.device(device):
            runner = ModelRunner(reference)
            image = np.random.RandomState(0).randn(cfg.input_size, cfg.input_size, 3)
            image = (image * 50).astype(np.float32)
            words = suite.front_padded_words(
                cfg.num_words, [min(n, cfg.num_words) for n in (3, 4, 5, 6, 7, 8, 9)],
                cfg.vocab_size)
            timing = harness.interleaved_compare({
                "shared_trunk": lambda: runner.shared_trunk(image, words),
                "per_expression": lambda: runner.per_expression(image, words)},
                warmup=1, repeats=max(3, repeats // 2))
        results["eval"] = {k: dict(t, expressions_per_s=7 / t["median_s"])
                           for k, t in timing.items()}
        results["eval"]["speedup"] = (timing["per_expression"]["median_s"]
                                      / timing["shared_trunk"]["median_s"])

    results["skipped"] = skipped
    results["seconds"] = time.monotonic() - start
    results["ok"] = bool(results["agreement"]) and all(
        a["ok"] for a in results["agreement"].values()) and not skipped
    return results


def summary_table(results: dict) -> str:
    """The short table printed last."""
    rows = []
    for dtype, m in results["matmul"].items():
        rows.append([f"matmul {dtype} {m['n']}^2", f"{m['gflops']:.0f} GFLOP/s", ""])
    for name, entry in results.get("train_step", {}).items():
        for key, t in entry.items():
            if key.startswith("batch_"):
                agree = results["agreement"].get(name)
                rows.append([f"D+RMI train step {name}, {key.replace('_', ' ')}",
                             f"{1000 * t['median_s']:.1f} ms ({t['samples_per_s']:.1f} samples/s)",
                             "" if agree is None or key != f"batch_{agree['batch']}" else
                             f"grad rel. err {agree['grad_relative_error']:.1e} "
                             f"(<= {agree['tolerance']:.0e}: {'ok' if agree['ok'] else 'FAIL'})"])
    if "eval" in results:
        e = results["eval"]
        rows.append(["evaluation, 7 expr/image", f"shared {e['shared_trunk']['expressions_per_s']:.1f}"
                     f" expr/s, per expr {e['per_expression']['expressions_per_s']:.1f}",
                     f"{e['speedup']:.2f}x"])
    text = harness.markdown_table(rows, ["measurement", "result", "check"])
    verdict = "OK" if results["ok"] else "NOT OK"
    if results["skipped"]:
        verdict += f" (skipped: {', '.join(results['skipped'])})"
    dry = " DRY RUN (tiny sizes, numbers meaningless)" if results["dry_run"] else ""
    return (f"gpu_check on {results['device']} ({results['machine']['host_kind']}),"
            f" {results['seconds']:.0f} s{dry}: {verdict}\n" + text)


def main(argv):
    del argv
    if not FLAGS.output_dir:
        raise SystemExit("gpu_check: --output_dir (or GPU_CHECK_DIR for gpu_check.sh) is required")
    results = run_check(FLAGS.dry_run, 1 if FLAGS.dry_run else FLAGS.repeats, FLAGS.batch,
                        FLAGS.budget_s, log=lambda line: print(line, flush=True))
    name = f"gpu_check-{results['machine']['host_kind']}{'-dry-run' if FLAGS.dry_run else ''}"
    path = os.path.join(FLAGS.output_dir, name + ".json")
    harness.write_json(path, results)
    print(f"Wrote {path}")
    print(summary_table(results), flush=True)
    return 0 if results["ok"] else 1


if __name__ == "__main__":
    app.run(main)
