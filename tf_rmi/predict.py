"""Segment one image for one expression, from a run or from an exported SavedModel.

Library functions used by `tf_rmi predict` and the tests; no flags here.

Both predictors return the same thing for an RGB image: `(mask bool [H, W],
probabilities float32 [H, W])`, the mask by the original's rule (upsampled
logits >= 1e-9, mapped back with the inverse resize-and-pad) and the sigmoid
map mapped back with the same inverse geometry. `RunPredictor` runs the
preprocessing in numpy (`tf_rmi.data`), `SavedModelPredictor` in the exported
graph (`tf_rmi.graph_ops`); they agree (tests/test_export.py).
"""
from __future__ import annotations

import io
import os
from typing import Optional, Tuple, Union

import numpy as np

THRESHOLD = 1e-9  # the original's test-time threshold on the upsampled logits
# Formats the SavedModel decodes itself (tf.io.decode_image): PNG, JPEG, GIF, BMP.
TF_IMAGE_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM")


def load_image(path: str) -> np.ndarray:
    """uint8 [H, W, 3] RGB from an image file, with a clear error when unreadable.

    Grayscale is tiled, alpha dropped, palette expanded, 16-bit reduced to its
    high byte: the pixels the SavedModel's decoder gives for PNG, JPEG (accurate
    DCT), GIF and BMP files.
    """
    from PIL import Image, UnidentifiedImageError

    from tf_rmi.data.image_ops import to_rgb

    if not os.path.isfile(path):
        raise FileNotFoundError(f"Image {path} not found")
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("L", "RGB", "RGBA"):
                return to_rgb(np.asarray(im))
            if im.mode.startswith("I;16"):
                # The high byte, as tf.io.decode_image converts 16-bit PNGs.
                return to_rgb((np.asarray(im).astype(np.uint16) >> 8).astype(np.uint8))
            return to_rgb(np.asarray(im.convert("RGB")))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ValueError(f"Cannot read image {path}: {err}. Give a JPEG or PNG file") from None


class RunPredictor:
    """Predictions from a run directory or checkpoint prefix (numpy pre/post-processing)."""

    def __init__(self, checkpoint: str, vocab_file: Optional[str] = None):
        from tf_rmi.data import pipeline
        from tf_rmi.data.text import Vocabulary
        from tf_rmi.run_dir import restore_model

        self.model, self.run_config, self.prefix = restore_model(checkpoint)
        self.vocab = Vocabulary.from_file(vocab_file or
                                          pipeline.resolve_vocab_file(self.run_config.data))

    def __call__(self, image: np.ndarray, expression: str) -> Tuple[np.ndarray, np.ndarray]:
        """(mask bool [H, W], probabilities float32 [H, W]) for uint8 [H, W(, C)]."""
        from tf_rmi.data import image_ops
        from tf_rmi.visualize import unpad_map

        cfg = self.model.config
        rgb = image_ops.to_rgb(image)
        h, w = rgb.shape[:2]
        words = self.vocab.encode(expression, cfg.num_words)  # ValueError when blank
        padded = image_ops.resize_and_pad(rgb, cfg.input_size)
        out = self.model((image_ops.caffe_preprocess(padded)[None], words[None]))
        up = out["upsampled_logits"][0, ..., 0].numpy()
        mask = image_ops.inverse_resize_and_pad(up >= THRESHOLD, h, w)
        return mask, unpad_map(out["probabilities"][0, ..., 0].numpy(), h, w)


class SavedModelPredictor:
    """Predictions from an exported SavedModel (everything runs in its graph)."""

    def __init__(self, path: str):
        import tensorflow as tf

        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise FileNotFoundError(f"No SavedModel in {path}: export one with "
                                    "`make export CKPT=<run> EXPORT_DIR=<dir>`")
        self.serve = tf.saved_model.load(path).signatures["serving_default"]

    def predict_bytes(self, image_bytes: bytes,
                      expression: str) -> Tuple[np.ndarray, np.ndarray]:
        """(mask bool [H, W], probabilities float32 [H, W]) for encoded image bytes.

        Raises ValueError with the graph's message for bad input."""
        import tensorflow as tf

        try:
            out = self.serve(image_bytes=tf.constant(image_bytes),
                             expression=tf.constant(expression))
        except tf.errors.InvalidArgumentError as err:
            raise ValueError(_assert_message(err.message)) from None
        return out["mask"].numpy().astype(bool), out["probabilities"].numpy()

    def __call__(self, image: np.ndarray, expression: str) -> Tuple[np.ndarray, np.ndarray]:
        """As `predict_bytes`, for a uint8 image (sent to the graph as lossless PNG)."""
        from PIL import Image

        from tf_rmi.data.image_ops import to_rgb

        buffer = io.BytesIO()
        Image.fromarray(to_rgb(image)).save(buffer, "PNG")
        return self.predict_bytes(buffer.getvalue(), expression)


def _assert_message(message: str) -> str:
    """The readable part of a graph error: the Assert's text, or the kernel's
    message (e.g. "Invalid PNG data, size 60"), without TF's framing lines."""
    for line in message.splitlines():
        line = line.strip()
        if line.startswith("assertion failed:"):
            parts = [p.strip(" []") for p in line[len("assertion failed:"):].split("] [")]
            return " ".join(p for p in parts if p)
    for line in message.splitlines():
        line = line.strip()
        if line and not line.startswith(("Graph execution error", "Detected at node",
                                         "<stack traces", "[[")):
            return line
    return "invalid input"


def load_predictor(checkpoint: Optional[str] = None, saved_model: Optional[str] = None,
                   vocab_file: Optional[str] = None):
    """A RunPredictor (`checkpoint`: run dir or prefix; `vocab_file` defaults to
    the run's) or a SavedModelPredictor (its vocabulary is inside)."""
    if bool(checkpoint) == bool(saved_model):
        raise ValueError("Give exactly one of --checkpoint (a run directory or checkpoint "
                         "prefix) or --saved_model (an exported SavedModel directory)")
    return SavedModelPredictor(saved_model) if saved_model else RunPredictor(checkpoint,
                                                                             vocab_file)


def predict_mask(model_or_saved: Union[RunPredictor, SavedModelPredictor, str],
                 image: np.ndarray, expression: str) -> Tuple[np.ndarray, np.ndarray]:
    """(mask bool [H, W], probabilities float32 [H, W]) for a uint8 image.

    `model_or_saved`: a predictor, or a path: a SavedModel directory (has
    saved_model.pb), else a run directory / checkpoint prefix.
    """
    if isinstance(model_or_saved, str):
        is_saved = os.path.isfile(os.path.join(model_or_saved, "saved_model.pb"))
        model_or_saved = load_predictor(None if is_saved else model_or_saved,
                                        model_or_saved if is_saved else None)
    return model_or_saved(image, expression)


def write_outputs(image: np.ndarray, mask: np.ndarray, expression: str, output_dir: str,
                  stem: str) -> Tuple[str, str]:
    """`<stem>_mask.png` (0/255) and `<stem>_overlay.png` (tinted, titled), atomically."""
    from PIL import Image

    from tf_rmi import visualize

    os.makedirs(output_dir, exist_ok=True)
    mask_path = os.path.join(output_dir, f"{stem}_mask.png")
    tmp = mask_path + ".tmp.png"
    Image.fromarray(np.asarray(mask, bool).astype(np.uint8) * 255).save(tmp)
    os.replace(tmp, mask_path)
    overlay_path = os.path.join(output_dir, f"{stem}_overlay.png")
    visualize.plot_overlay(image, mask, expression, overlay_path)
    return mask_path, overlay_path


def predict_to_files(image_path: str, expression: str, output_dir: str,
                     checkpoint: Optional[str] = None,
                     saved_model: Optional[str] = None,
                     vocab_file: Optional[str] = None) -> Tuple[str, str]:
    """The `tf_rmi predict` command: mask and overlay PNGs for one image.

    Everything is checked (arguments, image, expression) before the model is
    loaded or anything is written; errors are ValueError / FileNotFoundError
    with a message naming the input."""
    from tf_rmi.data import text

    if bool(checkpoint) == bool(saved_model):
        load_predictor(checkpoint, saved_model)  # raises the explanation
    if expression is None or not expression.strip():
        raise ValueError("The expression is empty: give a referring expression, "
                         "e.g. --expression=\"the man on the left\"")
    text.tokenize(expression)
    image = load_image(image_path)
    predictor = load_predictor(checkpoint, saved_model, vocab_file)
    if saved_model:
        with open(image_path, "rb") as f:
            data = f.read()
        if data.startswith(TF_IMAGE_MAGIC):
            mask, _ = predictor.predict_bytes(data, expression)  # decoded in the graph
        else:
            mask, _ = predictor(image, expression)  # e.g. TIFF/WebP: sent as PNG
    else:
        mask, _ = predictor(image, expression)
    stem = os.path.splitext(os.path.basename(image_path))[0]
    return write_outputs(image, mask, expression, output_dir, stem)
