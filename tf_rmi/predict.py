"""Segment one image for one expression, from a run or from an exported SavedModel.

Library functions used by `tf_rmi predict` and the tests; no flags here.
"""
from __future__ import annotations

import os
from typing import Tuple

import numpy as np


def load_image(path: str) -> np.ndarray:
    """uint8 [H, W, 3] RGB from an image file, with a clear error when unreadable."""
    from PIL import Image, UnidentifiedImageError

    from tf_rmi.data.image_ops import to_rgb

    if not os.path.exists(path):
        raise FileNotFoundError(f"Image {path} not found")
    try:
        with Image.open(path) as im:
            return to_rgb(np.asarray(im.convert("RGBA") if im.mode == "P" else im))
    except (UnidentifiedImageError, OSError, TypeError, ValueError) as err:
        raise ValueError(f"Cannot read image {path}: {err}") from None


class RunPredictor:
    """Predictions from a run directory (library path, numpy pre/post-processing)."""

    def __init__(self, checkpoint: str, vocab_file: str = None):
        from tf_rmi.data import pipeline
        from tf_rmi.data.text import Vocabulary
        from tf_rmi.run_dir import restore_model

        self.model, self.run_config, _ = restore_model(checkpoint)
        self.vocab = Vocabulary.from_file(vocab_file or
                                          pipeline.resolve_vocab_file(self.run_config.data))

    def __call__(self, image: np.ndarray, expression: str) -> Tuple[np.ndarray, np.ndarray]:
        """(mask bool [H, W], probability float [S, S] on the padded input)."""
        from tf_rmi.data import image_ops

        cfg = self.model.config
        rgb = image_ops.to_rgb(image)
        words = self.vocab.encode(expression, cfg.num_words)
        padded = image_ops.resize_and_pad(rgb, cfg.input_size)
        out = self.model((image_ops.caffe_preprocess(padded)[None], words[None]))
        up = out["upsampled_logits"][0, ..., 0].numpy()
        mask = image_ops.inverse_resize_and_pad(up >= 1e-9, *rgb.shape[:2])
        return mask, out["probabilities"][0, ..., 0].numpy()


class SavedModelPredictor:
    """Predictions from an exported SavedModel (everything runs in its graph)."""

    def __init__(self, path: str):
        import tensorflow as tf

        if not os.path.isdir(path):
            raise FileNotFoundError(f"SavedModel directory {path} not found: run `make export`")
        self.serve = tf.saved_model.load(path).signatures["serving_default"]

    def __call__(self, image_bytes: bytes, expression: str) -> Tuple[np.ndarray, np.ndarray]:
        """(mask bool [H, W], probability float [H, W])."""
        import tensorflow as tf

        try:
            out = self.serve(image_bytes=tf.constant(image_bytes),
                             expression=tf.constant(expression))
        except tf.errors.InvalidArgumentError as err:
            raise ValueError(err.message.splitlines()[0]) from None
        return out["mask"].numpy().astype(bool), out["probabilities"].numpy()


def write_outputs(image: np.ndarray, mask: np.ndarray, expression: str, output_dir: str,
                  stem: str) -> Tuple[str, str]:
    """`<stem>_mask.png` (0/255) and `<stem>_overlay.png` (tinted, titled), atomically."""
    from PIL import Image

    from tf_rmi import visualize

    os.makedirs(output_dir, exist_ok=True)
    mask_path = os.path.join(output_dir, f"{stem}_mask.png")
    tmp = mask_path + ".tmp.png"
    Image.fromarray(mask.astype(np.uint8) * 255).save(tmp)
    os.replace(tmp, mask_path)
    plt = visualize._pyplot()
    fig, ax = plt.subplots(figsize=(6, 6 * image.shape[0] / max(image.shape[1], 1)))
    ax.imshow(visualize.overlay(image, mask))
    ax.set_title(expression, fontsize=10)
    ax.axis("off")
    overlay_path = os.path.join(output_dir, f"{stem}_overlay.png")
    visualize._save(fig, overlay_path)
    return mask_path, overlay_path


def predict_to_files(image_path: str, expression: str, output_dir: str,
                     checkpoint: str = None, saved_model: str = None) -> Tuple[str, str]:
    """The `tf_rmi predict` command: mask and overlay PNGs for one image."""
    if bool(checkpoint) == bool(saved_model):
        raise ValueError("Give exactly one of --checkpoint (a run) or --saved_model")
    if not expression or not expression.strip():
        raise ValueError("The expression is empty: give a referring expression")
    image = load_image(image_path)
    if saved_model:
        with open(image_path, "rb") as f:
            mask, _ = SavedModelPredictor(saved_model)(f.read(), expression)
    else:
        mask, _ = RunPredictor(checkpoint)(image, expression)
    stem = os.path.splitext(os.path.basename(image_path))[0]
    return write_outputs(image, mask, expression, output_dir, stem)
