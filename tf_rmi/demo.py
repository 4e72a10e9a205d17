"""`make demo`: the whole pipeline on the embedded synthetic set, on a laptop CPU.

Generates the 'shapes' referring dataset, writes it to TFRecords, trains the
small-trunk RMI model and the LSTM baseline, evaluates both on the synthetic
test split (raw and DenseCRF, with the paper's length breakdown), and writes
tables and Fig. 6/7 style figures to experiments/demo/.

    python -m tf_rmi.demo [--steps=N] [--output_dir=experiments/demo]
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "experiments/demo", "Tables and figures.")
flags.DEFINE_string("work_dir", "experiments/demo/work", "Records and runs (git-ignored).")
flags.DEFINE_integer("steps", None, "Training steps per model (default: DemoConfig.steps).")
flags.DEFINE_integer("num_train_images", None, "Synthetic training images (default: generator's).")
flags.DEFINE_integer("num_test_images", None, "Synthetic test images (default: generator's).")
flags.DEFINE_bool("crf", True, "Also score DenseCRF predictions.")


@dataclasses.dataclass
class DemoConfig:
    """Sizes chosen so both models train and evaluate in minutes on 2 CPU cores.

    The architecture is the paper's at a smaller scale: a small trainable trunk
    (no pretrained weights exist offline) instead of ResNet-101, a 16x16 feature
    map (128x128 input) instead of 40x40, 64-wide embeddings and LSTMs instead of 1000/500.
    The optimisation follows the original recipe (summed sigmoid cross-entropy,
    weight decay on conv kernels, Adam with polynomial decay, bias gradients x2)
    with a larger batch and learning rate, since the budget is ~1000 steps
    rather than 750000. Chosen on the validation split, never the test split.
    """

    input_size: int = 128
    small_trunk_width: int = 16
    dim: int = 64
    steps: int = 3000
    batch_size: int = 16
    learning_rate: float = 3e-3
    seed: int = 0
    visualize: int = 6


def _run_config(cfg: DemoConfig, model: str, tfrecord_dir: str):
    from tf_rmi import train_lib

    run = train_lib.config_from_flags(
        "shapes", tfrecord_dir, model=model, weights="deeplab", trunk="small",
        small_trunk_width=cfg.small_trunk_width, input_size=cfg.input_size,
        iterations=cfg.steps, snapshot_every=cfg.steps, batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate, seed=cfg.seed, visual_dim=cfg.dim,
        embed_dim=cfg.dim, lstm_units=cfg.dim, mlstm_units=cfg.dim, lr_decay_steps=0)
    return run


def run_demo(cfg: DemoConfig, output_dir: str, work_dir: str, crf: bool = True,
             num_train_images: int = None, num_test_images: int = None,
             progress: bool = True) -> dict:
    """Runs every phase; returns the summary (also written as summary.json)."""
    from tf_rmi import eval_lib, train_lib, visualize
    from tf_rmi.config import EvalConfig
    from tf_rmi.data import preprocess_lib
    from tf_rmi.data.text import Vocabulary
    from tf_rmi.run_dir import restore_model

    timings = {}
    tfrecord_dir = os.path.join(work_dir, "tfrecords")
    start = time.monotonic()
    shapes_args = {}
    if num_train_images is not None:
        shapes_args.update(num_train_images=num_train_images, num_val_images=max(2, num_train_images // 5))
    if num_test_images is not None:
        shapes_args["num_test_images"] = num_test_images
    print("== 1/4 generating the synthetic set and writing TFRecords", flush=True)
    preprocess_lib.preprocess("shapes", data_root="", output_dir=tfrecord_dir,
                              splits=("train", "test"), image_size=cfg.input_size,
                              seed=cfg.seed, progress=progress, shapes_args=shapes_args)
    timings["preprocess_s"] = time.monotonic() - start

    summary = {"config": dataclasses.asdict(cfg), "models": {}}
    for k, model_kind in enumerate(("RMI", "LSTM")):
        print(f"== {2 + k}/4 training {model_kind} ({cfg.steps} steps)", flush=True)
        run_dir = os.path.join(work_dir, "runs", model_kind)
        t0 = time.monotonic()
        train_lib.train(_run_config(cfg, model_kind, tfrecord_dir), run_dir, progress=progress)
        timings[f"train_{model_kind}_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        model, run_config, prefix = restore_model(run_dir)
        out_dir = os.path.join(output_dir, model_kind)
        results = eval_lib.evaluate(model, run_config,
                                    EvalConfig(split="test", crf=crf, visualize=cfg.visualize),
                                    out_dir=out_dir, progress=progress,
                                    checkpoint=os.path.relpath(prefix))
        timings[f"eval_{model_kind}_s"] = time.monotonic() - t0
        print(eval_lib.console_summary(results), flush=True)
        summary["models"][model_kind] = {k2: results[k2] for k2 in
                                         ("raw", "crf", "length_group_bounds", "expressions")}
        if model_kind == "RMI":
            _expression_figures(model, run_config, tfrecord_dir, output_dir)
    timings["total_s"] = time.monotonic() - start
    summary["timings"] = timings
    summary["targets"] = _targets(summary)
    _write(summary, output_dir)
    return summary


def _expression_figures(model, run_config, tfrecord_dir, output_dir):
    """Fig. 6 and Fig. 1/5 style figures for the first test expressions."""
    import dataclasses as dc

    from tf_rmi import visualize
    from tf_rmi.data import pipeline
    from tf_rmi.data.text import Vocabulary

    data_cfg = dc.replace(run_config.data, tfrecord_dir=tfrecord_dir)
    vocab = Vocabulary.from_file(pipeline.resolve_vocab_file(data_cfg))
    seen = 0
    for record in pipeline.eval_dataset(data_cfg, "test").as_numpy_iterator():
        sentence = record["sentence"].decode("utf-8")
        if len(sentence.split()) < 4:
            continue
        visualize.expression_figures(model, vocab, record["image"], sentence,
                                     os.path.join(output_dir, "figures"), stem=f"test{seen}")
        seen += 1
        if seen == 2:
            break


def _targets(summary: dict) -> dict:
    rmi, lstm = summary["models"]["RMI"]["raw"], summary["models"]["LSTM"]["raw"]
    longest_rmi = rmi["length_groups"][-1]["overall_iou"]
    longest_lstm = lstm["length_groups"][-1]["overall_iou"]
    return {"rmi_overall_iou": rmi["overall_iou"], "rmi_overall_iou_target": 0.75,
            "rmi_overall_iou_met": rmi["overall_iou"] >= 0.75,
            "longest_group_rmi": longest_rmi, "longest_group_lstm": longest_lstm,
            "rmi_beats_lstm_on_longest": longest_rmi > longest_lstm}


def summary_markdown(summary: dict) -> str:
    lines = ["| model | overall IoU | mean IoU | P@0.5 | P@0.9 | overall IoU, DenseCRF |",
             "|---|---|---|---|---|---|"]
    for kind, m in summary["models"].items():
        raw, crf = m["raw"], m["crf"]
        lines.append(f"| {kind} | {100 * raw['overall_iou']:.2f} | {100 * raw['mean_iou']:.2f} | "
                     f"{100 * raw['precision']['0.5']:.2f} | {100 * raw['precision']['0.9']:.2f} | "
                     + (f"{100 * crf['overall_iou']:.2f}" if crf else "—") + " |")
    bounds = summary["models"]["RMI"]["length_group_bounds"]
    lines += ["", "Overall IoU by expression length (words), raw:", "",
              "| model | " + " | ".join(f"{lo}-{hi}" for lo, hi in bounds) + " |",
              "|---|" + "---|" * len(bounds)]
    for kind, m in summary["models"].items():
        lines.append(f"| {kind} | " + " | ".join(
            f"{100 * g['overall_iou']:.2f}" for g in m["raw"]["length_groups"]) + " |")
    t = summary["targets"]
    lines += ["", f"Targets: RMI overall IoU {100 * t['rmi_overall_iou']:.2f} (target 75: "
              f"{'met' if t['rmi_overall_iou_met'] else 'NOT met'}); longest group RMI "
              f"{100 * t['longest_group_rmi']:.2f} vs LSTM {100 * t['longest_group_lstm']:.2f} "
              f"({'RMI ahead' if t['rmi_beats_lstm_on_longest'] else 'RMI NOT ahead'}).",
              "", "Time (s): " + ", ".join(f"{k[:-2]} {v:.0f}" for k, v in summary["timings"].items())]
    return "\n".join(lines) + "\n"


def _write(summary: dict, output_dir: str) -> None:
    os.makedirs(output_dir, exist_ok=True)
    for name, content in (("summary.json", json.dumps(summary, indent=2, sort_keys=True) + "\n"),
                          ("summary.md", summary_markdown(summary))):
        path = os.path.join(output_dir, name)
        with open(path + ".tmp", "w") as f:
            f.write(content)
        os.replace(path + ".tmp", path)


def main(argv):
    del argv
    cfg = DemoConfig()
    if FLAGS.steps:
        cfg = dataclasses.replace(cfg, steps=FLAGS.steps)
    try:
        summary = run_demo(cfg, FLAGS.output_dir, FLAGS.work_dir, FLAGS.crf,
                           FLAGS.num_train_images, FLAGS.num_test_images)
    except (FileNotFoundError, ValueError) as err:
        sys.exit(f"demo: {err}")
    print("\n" + summary_markdown(summary))
    print(f"Tables and figures: {FLAGS.output_dir}/")


if __name__ == "__main__":
    app.run(main)
