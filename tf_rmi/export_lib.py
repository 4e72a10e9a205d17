"""A self-contained SavedModel: bytes and a sentence in, a mask out.

Plain `tf.saved_model.load(path)` uses it with no tf_rmi import:

    m = tf.saved_model.load("exports/demo_rmi")
    out = m.signatures["serving_default"](image_bytes=tf.constant(png_bytes),
                                          expression=tf.constant("the red circle"))
    out["mask"]           # uint8 [H, W], 1 on the referred object, original size
    out["probabilities"]  # float32 [H, W]

Signatures:
- `serving_default(image_bytes, expression)`: JPEG/PNG/GIF/BMP bytes of any
  size (grayscale, colour or RGBA) and a UTF-8 expression. Tokenisation (the
  vocabulary is in the graph and travels as an asset), resize-and-pad, the
  model and the inverse transform all run in the graph. Outputs `mask` (the
  original's rule: upsampled logits >= 1e-9, inverse-transformed),
  `probabilities` (the sigmoid map cropped to the image window and resized
  bilinearly to [H, W]) and `word_ids` [T].
- `explain(image_bytes, expression)`: the same plus `word_response_maps`
  [T, H, W] (RMI models; Fig. 6 of the paper).
- `segment_batch(images, words)`: already resized, caffe-preprocessed images
  float32 [N, S, S, 3] and word ids int32 [N, T], for throughput; returns
  `upsampled_logits` and `probabilities` [N, S, S, 1].

Bad input (undecodable bytes, an empty or whitespace-only expression) raises
InvalidArgumentError with a message saying what is wrong; the loaded model
stays usable. An expression of only unknown words is encoded as <unk> ids and
segmented like any other; a 1x1 image is resized like any other.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Optional

import tensorflow as tf

from tf_rmi import graph_ops
from tf_rmi.data import image_ops

THRESHOLD = 1e-9
# Magic numbers of the formats tf.io.decode_image reads.
_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM")


class SegmentationServer(tf.Module):
    """The exported module: the model, its vocabulary and the serving functions."""

    def __init__(self, model, vocab, vocab_path: str, config_path: Optional[str] = None):
        super().__init__(name="tf_rmi_server")
        self.model = model
        self.size = model.config.input_size
        self.num_words = model.config.num_words
        self.is_rmi = model.config.model == "RMI"
        self.table = graph_ops.vocab_table(vocab)
        self.vocabulary = tf.saved_model.Asset(vocab_path)
        if config_path:
            self.run_config = tf.saved_model.Asset(config_path)

    def _decode(self, image_bytes):
        head = tf.strings.substr(image_bytes, 0, 4)
        known = tf.reduce_any([tf.equal(tf.strings.substr(image_bytes, 0, len(magic)), magic)
                               for magic in _MAGIC])
        check = tf.debugging.Assert(known, [
            "image_bytes is not a JPEG, PNG, GIF or BMP image (first bytes:", head, ")"])
        with tf.control_dependencies([check]):
            image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        return tf.ensure_shape(image, [None, None, 3])

    def _encode(self, expression):
        stripped = tf.strings.strip(expression)
        check = tf.debugging.Assert(tf.strings.length(stripped) > 0, [
            "expression is empty or whitespace only: give a referring expression"])
        with tf.control_dependencies([check]):
            return graph_ops.tokenize_and_encode_tf(expression, self.table, self.num_words)

    def _to_image(self, maps, h, w):
        """[K, S, S] padded-domain maps -> [K, h, w]: crop the image window, resize."""
        new_h, new_w, top, left = graph_ops.resize_pad_geometry_tf(h, w, self.size)
        window = maps[:, top:top + new_h, left:left + new_w, None]
        return tf.image.resize(window, tf.stack([h, w]), method="bilinear")[..., 0]

    def _run(self, image_bytes, expression, word_maps: bool):
        image = self._decode(image_bytes)
        words = self._encode(expression)
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        padded = graph_ops.resize_and_pad_tf(image, self.size)
        inputs = image_ops.caffe_preprocess_tf(padded)[None]
        out = self.model.segment(self.model.visual_features(inputs), words[None],
                                 return_word_maps=word_maps)
        up = out["upsampled_logits"][0, :, :, 0]
        mask = graph_ops.inverse_resize_and_pad_tf(up >= THRESHOLD, h, w)
        result = {"mask": tf.cast(mask, tf.uint8),
                  "probabilities": self._to_image(tf.sigmoid(up)[None], h, w)[0],
                  "word_ids": words}
        if word_maps:
            result["word_response_maps"] = self._to_image(out["word_response_maps"][0], h, w)
        return result

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="image_bytes"),
                                  tf.TensorSpec([], tf.string, name="expression")])
    def serve(self, image_bytes, expression):
        return self._run(image_bytes, expression, word_maps=False)

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="image_bytes"),
                                  tf.TensorSpec([], tf.string, name="expression")])
    def explain(self, image_bytes, expression):
        return self._run(image_bytes, expression, word_maps=self.is_rmi)

    @tf.function
    def segment_batch(self, images, words):
        out = self.model((images, words))
        return {"upsampled_logits": out["upsampled_logits"],
                "probabilities": out["probabilities"]}


def export_saved_model(model, vocab_path: str, output_dir: str,
                       config_path: Optional[str] = None) -> str:
    """Writes the SavedModel to `output_dir` (atomically: temp dir, then rename)."""
    from tf_rmi.data.text import Vocabulary

    vocab = Vocabulary.from_file(vocab_path)
    if len(vocab) != model.config.vocab_size:
        raise ValueError(f"The vocabulary {vocab_path} has {len(vocab)} words but the model "
                         f"embeds {model.config.vocab_size}: export with the run's vocabulary")
    server = SegmentationServer(model, vocab, vocab_path, config_path)
    size, t = model.config.input_size, model.config.num_words
    batch = server.segment_batch.get_concrete_function(
        tf.TensorSpec([None, size, size, 3], tf.float32, name="images"),
        tf.TensorSpec([None, t], tf.int32, name="words"))
    signatures = {"serving_default": server.serve, "explain": server.explain,
                  "segment_batch": batch}
    output_dir = os.path.abspath(output_dir)
    parent = os.path.dirname(output_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(output_dir) + ".tmp-", dir=parent)
    try:
        tf.saved_model.save(server, tmp, signatures=signatures)
        if os.path.exists(output_dir):
            old = output_dir + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(output_dir, old)
            os.replace(tmp, output_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, output_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return output_dir


def export_run(checkpoint: str, output_dir: str, vocab_file: Optional[str] = None) -> str:
    """Restores a run (directory or checkpoint prefix) and exports it."""
    from tf_rmi.config import CONFIG_FILENAME
    from tf_rmi.data import pipeline
    from tf_rmi.run_dir import resolve_checkpoint, restore_model

    model, run_config, _ = restore_model(checkpoint)
    run_dir, _ = resolve_checkpoint(checkpoint)
    vocab_path = vocab_file or pipeline.resolve_vocab_file(run_config.data)
    if not os.path.exists(vocab_path):
        raise FileNotFoundError(f"Vocabulary {vocab_path} not found: pass --vocab_file")
    return export_saved_model(model, vocab_path, output_dir,
                              os.path.join(run_dir, CONFIG_FILENAME))
