"""One ablation run of the demo's recipe: train on the synthetic set, report validation.

Trains one model with `--eval_every` validation (overall IoU on the first
`--eval_max_expressions` validation expressions) and prints one JSON line
(`RESULT {...}`: training loss per 100 steps, the validation curve, final
scores); also appended to `--results` (JSON lines). The demo's own settings are
`tf_rmi.recipes.demo_lib.DemoConfig`; the flags here change one thing at a time.

    python -m experiments.demo_ablation --name=base --steps=1500
"""
import dataclasses
import json
import os
import shutil
import time

from absl import app, flags

from tf_rmi.errors import clean_exit

FLAGS = flags.FLAGS
flags.DEFINE_string("name", None, "Run name (runs/<name> under --work_dir).")
flags.DEFINE_string("work_dir", "experiments/ablations/work", "Records and runs (git-ignored).")
flags.DEFINE_string("results", "experiments/ablations/results.jsonl", "Appended JSON lines.")
flags.DEFINE_enum("model", "RMI", ["RMI", "LSTM"], "Head.")
flags.DEFINE_integer("steps", 1500, "Training steps.")
flags.DEFINE_integer("batch", 16, "Batch size.")
flags.DEFINE_float("lr", 3e-3, "Adam learning rate (polynomial decay over the budget).")
flags.DEFINE_integer("width", 16, "Small trunk width.")
flags.DEFINE_integer("dim", 64, "Embedding / LSTM / visual width.")
flags.DEFINE_float("scale", 1.0, "Small trunk input scale.")
flags.DEFINE_enum("norm", "none", ["none", "group"], "Small trunk normalisation.")
flags.DEFINE_bool("residual", False, "Small trunk identity shortcuts.")
flags.DEFINE_bool("aligned", False, "Small trunk cells centred on pixel 8k.")
flags.DEFINE_integer("size", 128, "Input size.")
flags.DEFINE_integer("train_images", 200, "Synthetic training images.")
flags.DEFINE_bool("square", False, "Draw images square at the input size.")
flags.DEFINE_float("object_scale", 1.0, "Synthetic object size multiplier.")
flags.DEFINE_integer("seed", 0, "Synthetic set seed.")
flags.DEFINE_integer("eval_every", 250, "Validation interval.")
flags.DEFINE_integer("eval_max_expressions", 200, "Validation expressions per validation.")
flags.mark_flag_as_required("name")


@clean_exit("demo_ablation")
def main(argv):
    del argv
    from tf_rmi.training import train_lib
    from tf_rmi.data import preprocess_lib

    shapes_args = dict(num_train_images=FLAGS.train_images, num_val_images=40, num_test_images=60)
    if FLAGS.square:
        shapes_args.update(min_size=FLAGS.size, max_size=FLAGS.size)
    if FLAGS.object_scale != 1.0:
        shapes_args["object_scale"] = FLAGS.object_scale
    data = os.path.join(FLAGS.work_dir, "data_" + "_".join(
        f"{k}{v}" for k, v in sorted(dict(shapes_args, size=FLAGS.size, seed=FLAGS.seed).items())))
    if not os.path.exists(os.path.join(data, "shapes", "manifest.json")):
        preprocess_lib.preprocess("shapes", data_root="", output_dir=data,
                                  splits=("train", "val"), image_size=FLAGS.size,
                                  seed=FLAGS.seed, progress=False, shapes_args=shapes_args)
    run = train_lib.config_from_flags(
        "shapes", data, model=FLAGS.model, weights="deeplab", trunk="small",
        small_trunk_width=FLAGS.width, input_size=FLAGS.size, iterations=FLAGS.steps,
        snapshot_every=FLAGS.steps, batch_size=FLAGS.batch, learning_rate=FLAGS.lr, seed=0,
        visual_dim=FLAGS.dim, embed_dim=FLAGS.dim, lstm_units=FLAGS.dim, mlstm_units=FLAGS.dim,
        lr_decay_steps=0, log_every=50, eval_every=FLAGS.eval_every,
        eval_max_expressions=FLAGS.eval_max_expressions, small_trunk_input_scale=FLAGS.scale,
        small_trunk_norm=FLAGS.norm, small_trunk_residual=FLAGS.residual,
        small_trunk_aligned=FLAGS.aligned)
    run_dir = os.path.join(FLAGS.work_dir, "runs", FLAGS.name)
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.time()
    summary = train_lib.train(run, run_dir, progress=False)
    losses = summary["cls_losses"]
    out = {"name": FLAGS.name, "flags": {f: FLAGS[f].value for f in (
               "model", "steps", "batch", "lr", "scale", "norm", "residual", "aligned",
               "train_images", "square", "object_scale")},
           "seconds": round(time.time() - start, 1),
           "loss_per_100_steps": [round(sum(losses[i:i + 100]) / len(losses[i:i + 100]), 1)
                                  for i in range(0, len(losses), 100)],
           "val_overall_iou": [(v["step"], round(100 * v["overall_iou"], 1))
                               for v in summary["validations"]],
           "best": summary["best"]}
    print("RESULT", json.dumps(out), flush=True)
    os.makedirs(os.path.dirname(FLAGS.results) or ".", exist_ok=True)
    with open(FLAGS.results, "a", encoding="utf-8") as f:
        f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    app.run(main)
