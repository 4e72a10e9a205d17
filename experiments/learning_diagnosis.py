"""Why the demo learned slowly (issue 10): short runs on a subset of description kinds.

Trains the demo's small-trunk model on the synthetic set, optionally keeping only
some description kinds (`--kinds=attributes` keeps "the red star"-style
expressions, which need no spatial reasoning), then reports the validation
curve, the final validation overall IoU by kind, the score on 300 training
expressions, and two probes of the trained trunk:

- cosine: mean pairwise cosine similarity of the l2-normalised visual
  features (what the head sees) between the cells of one image;
- colour probe: accuracy of a least-squares linear read-out of the object
  colour (6 colours + background) from the trunk output, on held-out cells.

One JSON line (`RESULT {...}`) is printed and appended to `--results`.

    python -m experiments.learning_diagnosis --name=base --kinds=attributes
    python -m experiments.learning_diagnosis --name=fix --kinds=attributes \
        --standardize --trunk_lr_mult=0.05 --lr=2e-2
    python -m experiments.learning_diagnosis --name=pre --standardize --pretrain_trunk \
        --steps=2000

With --pretrain_trunk the trunk is pretrained once per setting (cached under
--work_dir/trunks/) on ALL training images of the full mix, whatever --kinds.
"""
import collections
import json
import os
import shutil
import time

import numpy as np
from absl import app, flags

from tf_rmi.errors import clean_exit

FLAGS = flags.FLAGS
flags.DEFINE_string("name", None, "Run name (runs/<name> under --work_dir).")
flags.DEFINE_string("work_dir", "experiments/ablations/work", "Records and runs (git-ignored).")
flags.DEFINE_string("results", "experiments/ablations/diagnosis.jsonl", "Appended JSON lines.")
flags.DEFINE_list("kinds", [], "Description kinds to keep (default: all).")
flags.DEFINE_enum("model", "RMI", ["RMI", "LSTM"], "Head.")
flags.DEFINE_integer("steps", 1500, "Training steps.")
flags.DEFINE_integer("train_images", 1000, "Synthetic training images (validation: 1/5 of it).")
flags.DEFINE_float("lr", 1e-2, "Adam learning rate (polynomial decay over the budget).")
flags.DEFINE_integer("batch", 8, "Batch size.")
flags.DEFINE_integer("eval_every", 500, "Validation interval.")
flags.DEFINE_enum("norm", "none", ["none", "group"], "Small trunk normalisation.")
flags.DEFINE_bool("standardize", False, "Small trunk output standardised per image.")
flags.DEFINE_bool("context", False, "Small trunk directional context.")
flags.DEFINE_float("trunk_lr_mult", 1.0, "Small trunk learning-rate multiplier.")
flags.DEFINE_bool("pretrain_trunk", False, "Pretrain the small trunk on per-cell labels of the "
                  "training images (tf_rmi.training.trunk_pretraining) and train with it frozen.")
flags.DEFINE_integer("pretrain_steps", 1500, "Trunk pretraining steps.")
flags.DEFINE_float("pretrain_lr", 1e-3, "Trunk pretraining Adam learning rate.")
flags.DEFINE_bool("bucket", False, "Batches from one bucket of sentence lengths "
                  "(train.bucket_by_length).")
flags.DEFINE_integer("dim", 64, "Width of the embedding, both LSTMs and the visual feature.")
flags.mark_flag_as_required("name")


def _kind_source(seed, kinds, shapes_args):
    from tf_rmi.data import shapes

    class KindSubset(shapes.ShapesSource):
        def referring_expressions(self, split):
            pairs = super().referring_expressions(split)
            return [p for p in pairs if not kinds or p[1].description.kind in kinds]

    return KindSubset(seed=seed, **shapes_args)


def trunk_probes(model, source, num_images: int = 40) -> dict:
    """Cosine spread of the head's visual input and a linear colour probe."""
    import tensorflow as tf

    from tf_rmi.data import image_ops, shapes

    colours = list(shapes.COLOURS)
    feats, labels, cosines = [], [], []
    for index in range(num_images):
        scene, image, masks = source._render("val", index)
        x = tf.constant(image_ops.caffe_preprocess(image[None].astype(np.float32)))
        trunk = model.trunk(x).numpy()[0]
        visual = model.visual_features(x).numpy()[0].reshape(-1, model.config.visual_dim)
        visual /= np.linalg.norm(visual, axis=1, keepdims=True)
        cos = visual @ visual.T
        cosines.append(cos[np.triu_indices(len(visual), 1)].mean())
        label = np.full(trunk.shape[:2], -1)
        for obj, mask in zip(scene.objects, masks):
            label[mask[::8, ::8] > 0] = colours.index(obj.colour)  # the cell's sampled pixel
        feats.append(trunk.reshape(-1, trunk.shape[-1]))
        labels.append(label.reshape(-1))
    x, y = np.concatenate(feats), np.concatenate(labels)
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[: len(y) // 2], order[len(y) // 2:]
    design = np.c_[x, np.ones(len(y))]
    weights = np.linalg.lstsq(design[train], np.eye(len(colours) + 1)[y[train] + 1],
                              rcond=None)[0]
    predicted = (design[test] @ weights).argmax(1) - 1
    on_objects = y[test] >= 0
    return {"cosine": round(float(np.mean(cosines)), 3),
            "colour_probe_objects": round(float(np.mean(
                predicted[on_objects] == y[test][on_objects])), 3),
            "trunk_output_std": round(float(np.median(x.std(0))), 3)}


def _pretrained_trunk(data: str, shapes_args: dict) -> str:
    """The pretrained trunk for the current trunk flags (written on first use)."""
    from tf_rmi.training import train_lib, trunk_pretraining
    from tf_rmi.data.shapes import ShapesSource

    name = (f"trunk_std{int(FLAGS.standardize)}_ctx{int(FLAGS.context)}_{FLAGS.norm}"
            f"_n{FLAGS.train_images}_s{FLAGS.pretrain_steps}_lr{FLAGS.pretrain_lr:g}")
    out = os.path.join(FLAGS.work_dir, "trunks", name)
    if os.path.exists(os.path.join(out, trunk_pretraining.INFO_NAME)):
        return out
    model_cfg = train_lib.config_from_flags(
        "shapes", data, trunk="small", small_trunk_width=16, input_size=128,
        small_trunk_input_scale=1 / 128, small_trunk_residual=True, small_trunk_aligned=True,
        small_trunk_norm=FLAGS.norm, small_trunk_standardize=FLAGS.standardize,
        small_trunk_context=FLAGS.context).model
    info = trunk_pretraining.pretrain_small_trunk(
        model_cfg, ShapesSource(seed=0, **shapes_args), out,
        trunk_pretraining.TrunkPretrainConfig(steps=FLAGS.pretrain_steps,
                                              learning_rate=FLAGS.pretrain_lr),
        progress=False)
    print("trunk pretraining:", json.dumps(info["val_accuracy"]), flush=True)
    return out


@clean_exit("learning_diagnosis")
def main(argv):
    del argv
    from tf_rmi.evaluation import eval_lib
    from tf_rmi.training import train_lib
    from tf_rmi.config import EvalConfig
    from tf_rmi.data import preprocess_lib
    from tf_rmi.recipes.demo_lib import DemoConfig
    from tf_rmi.training.run_dir import restore_model

    kinds = tuple(FLAGS.kinds)
    shapes_args = DemoConfig().shapes_args(FLAGS.train_images)
    source = _kind_source(0, kinds, shapes_args)
    data = os.path.join(FLAGS.work_dir, f"data_{'-'.join(kinds) or 'all'}_{FLAGS.train_images}")
    if not os.path.exists(os.path.join(data, "shapes", "manifest.json")):
        preprocess_lib.build_dataset(source, data, splits=("train", "val"), image_size=128,
                                     progress=False)
    trunk_dir = None
    if FLAGS.pretrain_trunk:
        trunk_dir = _pretrained_trunk(data, shapes_args)
    run = train_lib.config_from_flags(
        "shapes", data, model=FLAGS.model, weights="deeplab", trunk="small",
        small_trunk_width=16, input_size=128, iterations=FLAGS.steps,
        snapshot_every=FLAGS.steps, batch_size=FLAGS.batch, learning_rate=FLAGS.lr, seed=0,
        visual_dim=FLAGS.dim, embed_dim=FLAGS.dim, lstm_units=FLAGS.dim, mlstm_units=FLAGS.dim,
        lr_decay_steps=0, bucket_by_length=FLAGS.bucket,
        log_every=100, eval_every=FLAGS.eval_every, small_trunk_input_scale=1 / 128,
        small_trunk_residual=True, small_trunk_aligned=True, small_trunk_norm=FLAGS.norm,
        small_trunk_standardize=FLAGS.standardize, small_trunk_context=FLAGS.context,
        trunk_learning_rate_mult=1.0 if trunk_dir else FLAGS.trunk_lr_mult, pretrained=trunk_dir)
    run_dir = os.path.join(FLAGS.work_dir, "runs", FLAGS.name)
    shutil.rmtree(run_dir, ignore_errors=True)
    start = time.time()
    summary = train_lib.train(run, run_dir, progress=False)
    model, run_config, _ = restore_model(run_dir)
    val = eval_lib.evaluate(model, run_config, EvalConfig(split="val"), progress=False)
    train = eval_lib.evaluate(model, run_config, EvalConfig(split="train", max_expressions=300),
                              progress=False)
    kind_of = {e.sent_id: r.description.kind for e, r in source.referring_expressions("val")}
    per = val["per_expression"]
    inter = collections.Counter()
    union = collections.Counter()
    for sid, i, u in zip(per["sent_id"], per["raw"]["intersection"], per["raw"]["union"]):
        inter[kind_of[sid]] += i
        union[kind_of[sid]] += u
    losses = summary["cls_losses"]
    out = {"name": FLAGS.name,
           "flags": {f: FLAGS[f].value for f in ("kinds", "model", "steps", "train_images", "lr",
                                                 "batch", "norm", "standardize", "context",
                                                 "trunk_lr_mult", "pretrain_trunk",
                                                 "pretrain_steps", "pretrain_lr", "bucket", "dim")},
           "seconds": round(time.time() - start),
           "loss_per_100_steps": [round(float(np.mean(losses[i:i + 100])), 1)
                                  for i in range(0, len(losses), 100)],
           "val_curve": [(v["step"], round(100 * v["overall_iou"], 1))
                         for v in summary["validations"]],
           "val_overall_iou": round(100 * val["raw"]["overall_iou"], 1),
           "val_by_kind": {k: round(100 * inter[k] / max(union[k], 1), 1) for k in union},
           "train_300_overall_iou": round(100 * train["raw"]["overall_iou"], 1),
           "probes": trunk_probes(model, source)}
    print("RESULT " + json.dumps(out), flush=True)
    os.makedirs(os.path.dirname(FLAGS.results) or ".", exist_ok=True)
    with open(FLAGS.results, "a") as f:
        f.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    app.run(main)
