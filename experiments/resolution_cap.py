"""The best overall IoU any model can reach on the synthetic set at a given input size.

The head predicts one logit per cell of the feature map (stride 8), trained
against the mask sampled at pixels (8i, 8j) (the original's targets); the
logits are upsampled bilinearly (TF1 semantics) and thresholded. A model that
gets every cell right therefore still misses the pixels between samples. This
script scores that perfect per-cell prediction (+1 on the sampled object
pixels, -1 elsewhere) against the full-resolution visible masks of every
object of the first `--images` training scenes, for each input size and object
scale asked for. It needs no training and no records.

    python -m experiments.resolution_cap --sizes=128,160,192 --scales=1.0,1.3
"""
import numpy as np
from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_list("sizes", ["128", "160", "192", "256"], "Square input sides (pixels).")
flags.DEFINE_list("scales", ["1.0", "1.3", "2.0"], "Object scales (shapes object_scale).")
flags.DEFINE_integer("images", 150, "Training scenes scored (seed 0).")
flags.DEFINE_integer("stride", 8, "Output stride of the trunk.")


def perfect_cell_scores(size: int, scale: float, images: int, stride: int = 8) -> dict:
    """Overall IoU, P@0.5 and P@0.7 of the perfect per-cell prediction over
    every object of `images` square scenes of side `size`."""
    import tensorflow as tf

    from tf_rmi.data.shapes import generate_scene, render
    from tf_rmi.models.layers import tf1_resize_bilinear

    inter_sum = union_sum = 0
    ious = []
    for index in range(images):
        scene = generate_scene(0, "train", index, min_size=size, max_size=size,
                               object_scale=scale)
        _, masks = render(scene)  # [K, size, size] visible pixels
        cells = masks[:, ::stride, ::stride].astype(np.float32) * 2 - 1
        logits = tf1_resize_bilinear(tf.constant(cells[..., None]), (size, size))
        predicted = logits.numpy()[..., 0] >= 1e-9
        inter = (predicted & masks).sum((1, 2))
        union = (predicted | masks).sum((1, 2))
        inter_sum += int(inter.sum())
        union_sum += int(union.sum())
        ious.extend((inter / union).tolist())
    ious = np.asarray(ious)
    return {"overall_iou": inter_sum / union_sum, "precision@0.5": float((ious >= 0.5).mean()),
            "precision@0.7": float((ious >= 0.7).mean()), "objects": len(ious)}


def main(argv):
    del argv
    print("| input | object scale | map | overall IoU | P@0.5 | P@0.7 | objects |")
    print("|---|---|---|---|---|---|---|")
    for size in (int(s) for s in FLAGS.sizes):
        for scale in (float(s) for s in FLAGS.scales):
            r = perfect_cell_scores(size, scale, FLAGS.images, FLAGS.stride)
            print(f"| {size} | {scale:g} | {size // FLAGS.stride} | {100 * r['overall_iou']:.1f} "
                  f"| {100 * r['precision@0.5']:.1f} | {100 * r['precision@0.7']:.1f} "
                  f"| {r['objects']} |", flush=True)


if __name__ == "__main__":
    app.run(main)
