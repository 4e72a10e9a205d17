"""Evaluation exactly as the original release scores it, plus the paper's breakdowns.

For each expression of an evaluation split (original-size image and mask):
resize-and-pad the image to the model input, run the model, threshold the
upsampled logits at `EvalConfig.threshold` (default `inference.THRESHOLD`, the
original's 1e-9), map the prediction back with the inverse transform
(non-zero rule; both steps `inference.logits_to_mask`) and score I and U at
original resolution. With `crf`, the
DenseCRF prediction is scored in the same pass (on the float32 sigmoid of the
same logits, as the original's `model.sigm`). The expression-length breakdown
of the paper's Tables 2-5 uses four groups of roughly equal size, where an
expression's length is the number of words the model reads: its non-pad ids,
i.e. the tokens of the original tokenizer capped at T = 20 (the paper's last
groups end at 20).

Shared trunk (default): consecutive records of one image (preprocessing writes
evaluation splits grouped by image) share one trunk pass; the head then runs on
all of their expressions at once. Per-expression mode runs the full model once
per expression; both give identical metrics.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import datetime
import multiprocessing
import os
import sys
import time
import weakref
from typing import Callable, Dict, Iterator, List, Optional

import numpy as np
import tensorflow as tf

from tf_rmi import atomic_io
from tf_rmi.evaluation import metrics
from tf_rmi.serving import inference
from tf_rmi.config import EvalConfig, RunConfig
from tf_rmi.data import paper_tables, pipeline

MAX_GROUP = 32  # expressions per head call in shared-trunk mode


class _Progress:
    """A one-line stderr progress bar with expressions/s and ETA."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.total, self.label, self.enabled = total, label, enabled
        self.start = time.monotonic()
        self.last = 0.0

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < 0.5):
            return
        self.last = now
        rate = done / max(now - self.start, 1e-9)
        eta = (self.total - done) / rate if rate > 0 else 0.0
        sys.stderr.write(f"\r[{self.label}] {done}/{self.total} expressions  {rate:.1f}/s  "
                         f"ETA {int(eta) // 60:02d}:{int(eta) % 60:02d}   ")
        if force:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _groups(dataset, shared: bool) -> Iterator[List[dict]]:
    """Lists of consecutive records of one image (singletons when not shared)."""
    group: List[dict] = []
    for record in dataset.as_numpy_iterator():
        if group and (not shared or record["image_id"] != group[0]["image_id"]
                      or len(group) >= MAX_GROUP):
            yield group
            group = []
        group.append(record)
    if group:
        yield group


class ModelRunner:
    """tf.function wrappers of the model with fixed signatures (no retracing)."""

    def __init__(self, model):
        cfg = model.config
        size, t = cfg.input_size, cfg.num_words
        self.model = model
        # Seconds spent in each part of the model calls, accumulated over calls
        # (on a GPU, asynchronous execution can move trunk time into "head").
        self.stage_seconds: Dict[str, float] = {"trunk": 0.0, "head": 0.0, "full_model": 0.0}
        self.visual = tf.function(
            model.visual_features, input_signature=[tf.TensorSpec([None, size, size, 3])])
        feat = cfg.feature_size

        def segment(visual, words, index):
            return model.segment(visual, words, image_index=index)["upsampled_logits"]

        self.segment = tf.function(segment, input_signature=[
            tf.TensorSpec([None, feat, feat, cfg.visual_dim]),
            tf.TensorSpec([None, t], tf.int32), tf.TensorSpec([None], tf.int32)])

        def one_image(visual, words):
            return model.segment_one_image(visual, words)["upsampled_logits"]

        # One image, its expressions each running only their own steps.
        self.segment_one_image = tf.function(one_image, input_signature=[
            tf.TensorSpec([1, feat, feat, cfg.visual_dim]), tf.TensorSpec([None, t], tf.int32)])

        def full(images, words):
            return model((images, words))["upsampled_logits"]

        self.full = tf.function(full, input_signature=[
            tf.TensorSpec([None, size, size, 3]), tf.TensorSpec([None, t], tf.int32)])

    def shared_trunk(self, image: np.ndarray, words: np.ndarray) -> np.ndarray:
        """[n, S, S] upsampled logits for n expressions of one image: one trunk
        pass, the head's per-image projection once, each expression's own steps."""
        start = time.perf_counter()
        visual = self.visual(image[None])
        mid = time.perf_counter()
        out = self.segment_one_image(visual, words).numpy()[..., 0]
        self.stage_seconds["trunk"] += mid - start
        self.stage_seconds["head"] += time.perf_counter() - mid
        return out

    def per_expression(self, image: np.ndarray, words: np.ndarray) -> np.ndarray:
        """[n, S, S] upsampled logits, one full model call per expression."""
        start = time.perf_counter()
        out = np.concatenate([self.full(image[None], words[i:i + 1]).numpy()[..., 0]
                              for i in range(len(words))])
        self.stage_seconds["full_model"] += time.perf_counter() - start
        return out


# One runner per model, so that evaluating several splits (or raw and CRF
# runs) traces the tf.functions once.
_RUNNERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def model_runner(model) -> ModelRunner:
    """The cached `ModelRunner` of `model` (built on first use)."""
    runner = _RUNNERS.get(model)
    if runner is None:
        runner = _RUNNERS[model] = ModelRunner(model)
    return runner


class _CrfRefiner:
    """DenseCRF refinement of evaluation predictions, scored in submission order.

    With `workers` > 1 the refinements run in that many worker processes
    (pydensecrf is single-threaded; the CRF was ~40-80 % of an evaluation
    with `--crf`); at most a few per worker are in flight, so memory stays
    bounded. With 1 they run in this process. The scores are added to
    `accumulator` in the records' order either way, so the metrics do not
    depend on `workers`.

    Workers are forked where the platform can (`spawn` elsewhere): `spawn`
    re-imports the caller's main module in every worker, which breaks a
    script or notebook cell without an `if __name__ == "__main__"` guard. The
    forked workers run numpy and pydensecrf only, never TensorFlow, whose
    threads do not survive a fork.
    """

    def __init__(self, accumulator: "metrics.ScoreAccumulator", workers: int):
        from tf_rmi.evaluation import crf as crf_lib

        self.accumulator, self.refine = accumulator, crf_lib.refine_to_original
        self.probabilities = crf_lib.sigmoid_probabilities
        self.workers = max(1, int(workers) if workers else (os.cpu_count() or 1))
        self.pending: "collections.deque" = collections.deque()
        self.pool = None
        if self.workers > 1:
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            self.pool = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context(method))

    def submit(self, padded: np.ndarray, upsampled_logits: np.ndarray, gt: np.ndarray,
               length: int, sample: Optional[dict]) -> None:
        """padded: uint8 [S,S,3]; upsampled_logits: [S,S]; gt: bool [h,w] (its
        shape is the size the prediction is mapped back to); sample: a figure's
        dict to receive `crf_prediction` / `crf_iou`, or None."""
        h, w = gt.shape
        # float32 sigmoid as the original's tf.sigmoid output: it saturates to
        # exactly 0 / 1 where the original's did. Here, not in the workers:
        # they run no TensorFlow.
        prob = self.probabilities(upsampled_logits)
        if self.pool is None:
            self._score(self.refine(padded, prob, h, w), gt, length, sample)
        else:
            self.pending.append((self.pool.submit(self.refine, padded, prob, h, w),
                                 gt, length, sample))

    def collect(self, wait_for_all: bool) -> None:
        """Scores finished refinements in order; waits for the oldest while
        more than 4 per worker are in flight (or for all of them)."""
        while self.pending and (wait_for_all or self.pending[0][0].done()
                                or len(self.pending) > 4 * self.workers):
            future, gt, length, sample = self.pending.popleft()
            self._score(future.result(), gt, length, sample)

    def _score(self, pred: np.ndarray, gt: np.ndarray, length: int,
               sample: Optional[dict]) -> None:
        score = self.accumulator.add(pred, gt, length)
        if sample is not None:
            sample.update(crf_prediction=pred, crf_iou=score)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pool = None


def expression_length(words: np.ndarray) -> int:
    """Words the model reads: the non-pad ids of int32 [T] `words`.

    Equal to `min(len(text.tokenize(sentence)), T)`: the encoder keeps the
    first T tokens and no token maps to `<pad>` (id 0).
    """
    return int(np.count_nonzero(np.asarray(words)))


def evaluate(model, run_config: RunConfig, eval_config: EvalConfig,
             tfrecord_dir: Optional[str] = None, out_dir: Optional[str] = None,
             progress: bool = True, checkpoint: str = "",
             runner: Optional[ModelRunner] = None) -> dict:
    """Scores `model` on `eval_config.split`; writes results.json / results.md to `out_dir`.

    Args:
      model: a built `ReferringSegmenter`.
      run_config: the run's config (its `data` section locates the records).
      eval_config: split, threshold, crf, shared_trunk, max_expressions,
        iou_thresholds, num_length_groups, visualize.
      tfrecord_dir: overrides `run_config.data.tfrecord_dir`.
      out_dir: where results.json / results.md (and figures) go; None writes nothing.
      checkpoint: recorded in the results.
      runner: the `ModelRunner` that runs `model` (its tf.functions already
        traced, e.g. by a benchmark's warm-up); None: `model_runner(model)`,
        the model's cached one.
    Returns the results dict: `raw` (and `crf`, else None) metric summaries
    (`metrics.ScoreAccumulator.summary`: overall IoU, mean IoU,
    precision@X, length groups), `length_group_bounds`, counts, `degenerate`
    ({records, reasons}: degenerate records, scored like any other), throughput
    and what was evaluated (`run_config`, `checkpoint`, `split`, `date`).
    Raises FileNotFoundError for a split with no shards and ValueError for a
    split with no records.
    """
    data_cfg = dataclasses.replace(run_config.data,
                                   tfrecord_dir=tfrecord_dir or run_config.data.tfrecord_dir)
    size = model.config.input_size
    total = pipeline.count_records(data_cfg, eval_config.split)
    if total == 0:
        raise ValueError(f"Split '{eval_config.split}' of {data_cfg.dataset} in "
                         f"{data_cfg.tfrecord_dir} holds no records (every sample skipped?): "
                         f"re-run `make preprocess DATASET={data_cfg.dataset}` and check its "
                         "skip summary")
    if eval_config.max_expressions:
        total = min(total, eval_config.max_expressions)
    dataset = pipeline.eval_dataset(data_cfg, eval_config.split,
                                    num_words=model.config.num_words).take(total)
    if runner is None:
        runner = model_runner(model)
    predict = runner.shared_trunk if eval_config.shared_trunk else runner.per_expression
    raw, crf = metrics.ScoreAccumulator(), metrics.ScoreAccumulator()
    samples: List[dict] = []
    bar = _Progress(total, f"eval {data_cfg.dataset} {eval_config.split}", progress)
    start, done, padded_records = time.monotonic(), 0, 0
    sent_ids: List[str] = []
    degenerate: Dict[str, int] = {}  # reason -> records (scored like any other)
    degenerate_records = 0
    # Where the time goes: reading and decoding records, the model input,
    # the model (trunk and head, or full calls), thresholding with the inverse
    # transform and scoring, DenseCRF.
    stages = {"read_and_decode": 0.0, "resize_and_pad_input": 0.0, "model": 0.0,
              "threshold_inverse_transform_and_score": 0.0, "crf": 0.0}
    model_stages0 = dict(runner.stage_seconds)
    crf_refiner = _CrfRefiner(crf, eval_config.crf_workers) if eval_config.crf else None
    try:
        groups = _groups(dataset, eval_config.shared_trunk)
        while True:
            tick = time.perf_counter()
            group = next(groups, None)
            stages["read_and_decode"] += time.perf_counter() - tick
            if group is None:
                break
            tick = time.perf_counter()
            image = group[0]["image"]
            padded, model_input = inference.preprocess_image(image, size)
            words = np.stack([r["words"] for r in group]).astype(np.int32)
            stages["resize_and_pad_input"] += time.perf_counter() - tick
            tick = time.perf_counter()
            logits = predict(model_input, words)
            stages["model"] += time.perf_counter() - tick
            for record, up in zip(group, logits):
                tick = time.perf_counter()
                gt = record["mask"] > 0
                # Evaluation records hold the original image and mask; a training
                # (padded) split is scored at the padded size, where the inverse
                # transform is the identity.
                h, w = gt.shape
                padded_records += bool(record["padded"])
                sent_ids.append(record["sent_id"].decode("utf-8", "replace"))
                reasons = [r for r in record["degenerate"].decode("utf-8").split(",") if r]
                degenerate_records += bool(reasons)
                for reason in reasons:
                    degenerate[reason] = degenerate.get(reason, 0) + 1
                length = expression_length(record["words"])
                pred = inference.logits_to_mask(up, h, w, eval_config.threshold)
                score = raw.add(pred, gt, length)
                stages["threshold_inverse_transform_and_score"] += time.perf_counter() - tick
                sample = None
                if len(samples) < eval_config.visualize:
                    sample = {"image": record["image"], "mask": gt, "prediction": pred,
                              "sentence": record["sentence"].decode("utf-8", "replace"),
                              "iou": score}
                    samples.append(sample)
                if crf_refiner is not None:
                    tick = time.perf_counter()
                    crf_refiner.submit(padded, up, gt, length, sample)
                    stages["crf"] += time.perf_counter() - tick
            done += len(group)
            bar.update(done)
            if crf_refiner is not None:
                tick = time.perf_counter()
                crf_refiner.collect(wait_for_all=False)
                stages["crf"] += time.perf_counter() - tick
        if crf_refiner is not None:
            tick = time.perf_counter()
            crf_refiner.collect(wait_for_all=True)
            stages["crf"] += time.perf_counter() - tick
    finally:
        if crf_refiner is not None:
            crf_refiner.close()
    bar.update(done, force=True)
    seconds = time.monotonic() - start
    bounds = metrics.length_group_bounds(raw.lengths, eval_config.num_length_groups)
    thresholds = tuple(eval_config.iou_thresholds)
    results = {
        "dataset": data_cfg.dataset, "split": eval_config.split, "checkpoint": checkpoint,
        "tfrecord_dir": data_cfg.tfrecord_dir,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": dataclasses.asdict(model.config), "run_config": run_config.to_dict(),
        "expressions": done, "padded_records": padded_records,
        # Scored as the original scores them (an empty mask fails every threshold).
        "degenerate": {"records": degenerate_records, "reasons": dict(sorted(degenerate.items()))},
        "shared_trunk": eval_config.shared_trunk, "threshold": eval_config.threshold,
        "seconds": seconds, "expressions_per_second": done / max(seconds, 1e-9),
        # Wall seconds per stage ("model" split into trunk / head, or full calls).
        "stage_seconds": {**stages, **{
            f"model_{name}": runner.stage_seconds[name] - model_stages0.get(name, 0.0)
            for name in runner.stage_seconds}},
        "length_definition": "non-pad word ids (tokens capped at num_words)",
        "length_group_bounds": [list(b) for b in bounds],
        "raw": raw.summary(bounds, thresholds),
        "crf": crf.summary(bounds, thresholds) if eval_config.crf else None,
        # Per expression, in evaluation order: what paired comparisons between
        # runs (e.g. a bootstrap over expressions) need.
        "per_expression": {
            "sent_id": sent_ids, "length": raw.lengths,
            "raw": {"intersection": raw.intersections, "union": raw.unions},
            "crf": ({"intersection": crf.intersections, "union": crf.unions}
                    if eval_config.crf else None)},
    }
    if out_dir:
        write_results(results, out_dir)
        if samples:
            _write_figures(samples, out_dir)
    return results


def _write_figures(samples: List[dict], out_dir: str) -> None:
    try:
        from tf_rmi.viz import visualize
    except ImportError as err:
        print(f"Figures skipped: tf_rmi.viz.visualize could not be imported ({err})",
              file=sys.stderr)
        return
    visualize.write_eval_figures(samples, out_dir)


def results_markdown(results: dict) -> str:
    """A Markdown table of the metrics (raw and CRF) and the length breakdown."""
    rows = [("raw", results["raw"])] + ([("DenseCRF", results["crf"])] if results["crf"] else [])
    thresholds = list(results["raw"]["precision"])
    lines = [f"# {results['dataset']} {results['split']}: {results['expressions']} expressions",
             "", "| | overall IoU | mean IoU | " + " | ".join(f"P@{t}" for t in thresholds) + " |",
             "|---|---|---|" + "---|" * len(thresholds)]
    for name, s in rows:
        lines.append(f"| {name} | {100 * s['overall_iou']:.2f} | {100 * s['mean_iou']:.2f} | "
                     + " | ".join(f"{100 * s['precision'][t]:.2f}" for t in thresholds) + " |")
    groups = results["raw"]["length_groups"]
    if groups:
        lines += ["", "IoU by expression length in words (the paper's Tables 2-5 groups; "
                  "expressions per group in brackets):", "",
                  "| | " + " | ".join(f"{g['lengths'][0]}-{g['lengths'][1]} ({g['count']})"
                                      for g in groups) + " |",
                  "|---|" + "---|" * len(groups)]
        for key, label in (("overall_iou", "overall IoU"), ("mean_iou", "mean IoU")):
            for name, s in rows:
                lines.append(f"| {name}, {label} | " + " | ".join(
                    f"{100 * g[key]:.2f}" for g in s["length_groups"]) + " |")
        lines += ["", "Length = words the model reads (non-pad ids, at most T)."]
        paper = paper_tables.paper_length_markdown(results["dataset"])
        if paper:
            lines += ["", f"The paper's Tables 2-5 for {results['dataset']} (overall IoU by "
                      "length, its test split: Gref val, UNC/UNC+ unnamed, ReferIt test; "
                      "from tf_rmi/data/published/length_breakdown.csv):", ""] + paper
    degenerate = results.get("degenerate") or {}
    if degenerate.get("records"):
        lines += ["", f"Scored but degenerate: {degenerate['records']} ("
                  + ", ".join(f"{k} {v}" for k, v in degenerate["reasons"].items())
                  + "), scored as the original scores them."]
    if results.get("padded_records"):
        lines += ["", f"Note: {results['padded_records']} records were resized-and-padded "
                  "(a training split); they are scored at the padded size."]
    lines += ["", f"Checkpoint: `{results['checkpoint']}`; {results['date']}; "
              f"{results['expressions_per_second']:.1f} expressions/s "
              f"({'shared trunk' if results['shared_trunk'] else 'per expression'})."]
    return "\n".join(lines) + "\n"


def default_output_dir(checkpoint_prefix: str, split: str, root: str = "experiments/results",
                       crf: bool = False, max_expressions: int = 0) -> str:
    """`<root>/<run name>/<split>[_crf][_first<N>]`, the run name being the run
    directory's name (checkpoints sit in `<run_dir>/checkpoints/ckpt-N`): raw
    and DenseCRF evaluations, and partial ones (`max_expressions` N), each get
    their own folder instead of overwriting each other's results."""
    run_dir = os.path.dirname(os.path.dirname(os.path.abspath(checkpoint_prefix)))
    name = split + ("_crf" if crf else "") + (f"_first{max_expressions}" if max_expressions else "")
    return os.path.join(root, os.path.basename(run_dir), name)


def evaluate_run(checkpoint: str, eval_config: EvalConfig, tfrecord_dir: Optional[str] = None,
                 out_dir: Optional[str] = None):
    """`evaluate` on a run directory or checkpoint prefix: the model and its
    config from the run (config.json), the records from `tfrecord_dir` or else
    the run's `data.tfrecord_dir` (relative to where training ran), the results
    to `out_dir` or else `default_output_dir`. Returns (results, out_dir).
    FileNotFoundError naming the fix when the records directory is missing."""
    from tf_rmi.training.run_dir import resolve_checkpoint, restore_model

    run_config = RunConfig.load(resolve_checkpoint(checkpoint)[0])
    records = tfrecord_dir or run_config.data.tfrecord_dir
    if not os.path.isdir(records):
        where = "" if tfrecord_dir else (
            " (the run's tfrecord_dir" + ("" if os.path.isabs(records) else
            f", relative to where training ran; looked up from {os.getcwd()}") + ")")
        raise FileNotFoundError(
            f"No records directory {records}{where}: pass --tfrecord_dir=<the directory holding "
            f"{run_config.data.dataset}/{eval_config.split}-*.tfrecord>")
    model, run_config, prefix = restore_model(checkpoint)
    out_dir = out_dir or default_output_dir(prefix, eval_config.split, crf=eval_config.crf,
                                            max_expressions=eval_config.max_expressions)
    results = evaluate(model, run_config, eval_config, tfrecord_dir, out_dir=out_dir,
                       checkpoint=prefix)
    return results, out_dir


def write_results(results: dict, out_dir: str) -> None:
    """results.json and results.md under `out_dir`, each written atomically."""
    os.makedirs(out_dir, exist_ok=True)
    atomic_io.write_json(os.path.join(out_dir, "results.json"), results)
    atomic_io.write_text(os.path.join(out_dir, "results.md"), results_markdown(results))


def console_summary(results: dict) -> str:
    """A few lines for the terminal."""
    s = results["raw"]
    # P@0.5, or the first threshold of an EvalConfig.iou_thresholds without 0.5.
    at = "0.5" if "0.5" in s["precision"] else next(iter(s["precision"]))
    text_out = (f"{results['dataset']} {results['split']} ({results['expressions']} expressions): "
                f"overall IoU {100 * s['overall_iou']:.2f}, mean IoU {100 * s['mean_iou']:.2f}, "
                f"P@{at} {100 * s['precision'][at]:.2f}")
    if results["crf"]:
        c = results["crf"]
        text_out += (f"\n  with DenseCRF: overall IoU {100 * c['overall_iou']:.2f}, "
                     f"mean IoU {100 * c['mean_iou']:.2f}, P@{at} {100 * c['precision'][at]:.2f}")
    bounds = ", ".join(f"{lo}-{hi}" for lo, hi in results["length_group_bounds"])
    groups = ", ".join(f"{100 * g['overall_iou']:.1f}" for g in s["length_groups"])
    text_out += f"\n  by length ({bounds} words): {groups}"
    paper = paper_tables.load_length_breakdown().get(results["dataset"])
    if paper:
        text_out += "\n  paper, by length (" + ", ".join(
            f"{g['words'][0]}-{g['words'][1]}" for g in paper) + " words): " + "; ".join(
            f"{m} " + ", ".join(f"{g[m]:.1f}" for g in paper) for m in paper_tables.LENGTH_METHODS)
    return text_out
