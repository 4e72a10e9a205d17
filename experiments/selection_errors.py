"""Does a trained demo model pick the wrong object, or the right one with a loose mask?

For each expression of a split of the demo's synthetic set, the model's 16x16
cell prediction (logit > 0) is compared with the objects of the scene, cell by
cell at the pixels (8i, 8j) the training targets sample:

- "right object": at least half of the target's cells predicted, and no other
  object's;
- "right + another object": the target's and another object's;
- "wrong object": another object's but not the target's;
- "nothing": no cell predicted; "partial": neither reaches half.

For the "right object" expressions the cell errors are split into missed
target cells on the object's border / inside it, and false cells next to the
object / elsewhere. Prints one table per description kind.

    python -m experiments.selection_errors --checkpoint=experiments/demo/work/runs/RMI/best/ckpt-3000 \
        --tfrecord_dir=experiments/demo/work/tfrecords --split=train --max_expressions=600
"""
import collections

import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Run directory or checkpoint prefix of a demo model.")
flags.DEFINE_string("tfrecord_dir", None, "The demo's records (default: the run's).")
flags.DEFINE_string("split", "val", "Split to score.")
flags.DEFINE_integer("max_expressions", 600, "Expressions scored (file order).")
flags.mark_flag_as_required("checkpoint")

CATEGORIES = ("right object", "right + another object", "wrong object", "partial", "nothing")


def categorize(cells: np.ndarray, predicted: np.ndarray, target: int) -> str:
    """cells: int [h, w] owner object per cell (-1 background); predicted: bool [h, w]."""
    share = {k: predicted[cells == k].mean() for k in np.unique(cells) if k >= 0}
    on_target = share.get(target, 0.0) >= 0.5
    on_other = any(v >= 0.5 for k, v in share.items() if k != target)
    if on_target:
        return "right + another object" if on_other else "right object"
    if on_other:
        return "wrong object"
    return "nothing" if not predicted.any() else "partial"


def main(argv):
    del argv
    from scipy import ndimage

    from tf_rmi.data import image_ops, pipeline
    from tf_rmi.data.shapes import ShapesSource
    from tf_rmi.recipes.demo_lib import DemoConfig
    from tf_rmi.training.run_dir import restore_model

    model, run_config, _ = restore_model(FLAGS.checkpoint)
    if FLAGS.tfrecord_dir:
        run_config.data.tfrecord_dir = FLAGS.tfrecord_dir
    stride = 8  # the output stride of both trunks: cell (i, j) is pixel (8i, 8j)
    source = ShapesSource(seed=0, **DemoConfig().shapes_args())
    kinds = {e.sent_id: m.description.kind for e, m in source.referring_expressions(FLAGS.split)}
    counts = collections.defaultdict(collections.Counter)
    cell_errors = collections.Counter()
    records = pipeline.eval_dataset(run_config.data, FLAGS.split,
                                    num_words=run_config.model.num_words)
    for batch in records.take(FLAGS.max_expressions).batch(32):
        images = image_ops.caffe_preprocess_tf(batch["image"])
        logits = model.segment(model.visual_features(images), batch["words"])["logits"]
        predicted = logits.numpy()[..., 0] > 0
        for k, sent_id in enumerate(batch["sent_id"].numpy()):
            sent_id = sent_id.decode()
            _, split, index, obj, _ = sent_id.split("-")
            _, _, masks = source._render(split, int(index))
            owner = np.full(masks.shape[1:], -1)
            for j, mask in enumerate(masks):
                owner[mask] = j
            cells = owner[::stride, ::stride]
            target = int(obj[1:])
            category = categorize(cells, predicted[k], target)
            for key in (kinds.get(sent_id, "?"), "all"):
                counts[key][category] += 1
            if category == "right object":
                on_target = cells == target
                inside = ndimage.binary_erosion(on_target, border_value=0)
                beside = ndimage.binary_dilation(on_target) & ~on_target
                missed, extra = on_target & ~predicted[k], predicted[k] & ~on_target
                cell_errors.update({
                    "target cells": int(on_target.sum()), "border cells": int((~inside
                                                                               & on_target).sum()),
                    "missed on border": int((missed & ~inside).sum()),
                    "missed inside": int((missed & inside).sum()),
                    "false beside": int((extra & beside).sum()),
                    "false elsewhere": int((extra & ~beside).sum())})
    print("| kind | expressions | " + " | ".join(CATEGORIES) + " |")
    print("|---|---|" + "---|" * len(CATEGORIES))
    for kind in sorted(counts, key=lambda k: (k == "all", k)):
        total = sum(counts[kind].values())
        print(f"| {kind} | {total} | " + " | ".join(
            f"{100 * counts[kind][c] / total:.1f} %" for c in CATEGORIES) + " |")
    print("\nCell errors of the 'right object' expressions:", dict(cell_errors))


if __name__ == "__main__":
    app.run(main)
