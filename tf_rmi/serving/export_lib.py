"""A self-contained SavedModel: bytes and a sentence in, a mask out.

Plain `tf.saved_model.load(path)` uses it with no tf_rmi import (the snippet
below is also written to `<export>/USAGE.md`):

    m = tf.saved_model.load("exports/demo_rmi")
    out = m.signatures["serving_default"](image_bytes=tf.constant(png_bytes),
                                          expression=tf.constant("the red circle"))
    out["mask"]           # uint8 [H, W], 1 on the referred object, original size
    out["probabilities"]  # float32 [H, W]

Signatures:
- `serving_default(image_bytes, expression)`: JPEG/PNG/GIF/BMP bytes of any
  size (grayscale, colour or RGBA; the first frame of a GIF; JPEGs decoded
  with the accurate DCT, as Pillow, so pixels equal `tf_rmi.serving.predict.load_image`'s)
  and a UTF-8 expression. Tokenisation, resize-and-pad (`tf_rmi.serving.graph_ops`, equal to the
  numpy/Python versions), the model and the inverse transform all run in the
  graph (`tf_rmi.serving.inference`'s graph twins: the same pre- and post-processing
  as evaluation and `tf_rmi.serving.predict`). Outputs:
  `mask` uint8 [H, W]: the original's rule, upsampled logits >=
  `inference.THRESHOLD` (1e-9) on the S x S input, mapped back with the
  original's inverse (the 0/1 map resized bilinearly by max(H/S, W/S), centre
  crop, non-zero);
  `probabilities` float32 [H, W]: the sigmoid of the upsampled logits mapped
  back with the same inverse geometry (bilinear values, not thresholded), so
  it lines up with `mask` (which is a little more generous than p > 0.5,
  being the non-zero set of a resized 0/1 map);
  `word_ids` int32 [T] (front-padded with 0);
  `num_unknown_words` int32 []: how many of the words read are not in the
  vocabulary (read as <unk>, as the original does);
  `num_dropped_words` int32 []: how many tokens beyond the first T were not
  read (the original keeps the first T).
- `explain(image_bytes, expression)`: the same plus `tokens` string [T]
  (front-padded with ""), and for RMI models `word_response_maps` float32
  [T, H, W] (the paper's Fig. 6 map after each step: transformed multimodal
  LSTM output, upsampled, channel mean, inverse geometry) and `word_masks`
  uint8 [T, H, W] (the segmentation had the expression ended at that step).
  A <pad> step carries the previous state, so its maps repeat (leading pads
  show the empty state).
- `segment_batch(images, words)`: already resized, caffe-preprocessed images
  float32 [N, S, S, 3] and word ids int32 [N, T], for throughput; returns
  `upsampled_logits` and `probabilities` [N, S, S, 1].

The vocabulary is a constant token -> id table in the graph (later duplicate
lines win, as `Vocabulary`); the vocabulary file and the run's config.json
travel as assets (`<export>/assets/`) for reference.

Bad input raises InvalidArgumentError with a message saying what is wrong,
and the loaded model stays usable: bytes that are not a JPEG/PNG/GIF/BMP
image (a corrupt file with a valid header gets tf.io.decode_image's own
message), an image so thin that a side would resize to 0 pixels, an
expression that is not UTF-8, or empty or whitespace only (Unicode
whitespace, as Python's str.strip). An expression of only unknown words is
encoded as <unk> ids and segmented like any other (the model gives a mask, as
the original would; `num_unknown_words` says so); a 1x1 image is resized like
any other. A wrong dtype or rank is rejected by the signature itself
(TypeError/ValueError on the call).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Optional

import tensorflow as tf

from tf_rmi import atomic_io
from tf_rmi.serving import graph_ops, inference
from tf_rmi.data import image_ops
from tf_rmi.models.segmenter import resize_bilinear

# The largest image served (image_ops.MAX_IMAGE_PIXELS, 4096 x 4096): larger ones
# are refused from their header, before decoding.
MAX_IMAGE_PIXELS = image_ops.MAX_IMAGE_PIXELS


class SegmentationServer(tf.Module):
    """The exported module: the model, its vocabulary and the serving functions."""

    def __init__(self, model, vocab, vocab_path: str, config_path: Optional[str] = None):
        super().__init__(name="tf_rmi_server")
        self.model = model
        self.size = model.config.input_size
        self.num_words = model.config.num_words
        self.is_rmi = model.config.model == "RMI"
        self.table = graph_ops.vocab_table(vocab)
        self.unk_id = vocab.unk_id
        self.vocabulary = tf.saved_model.Asset(vocab_path)
        if config_path:
            self.run_config = tf.saved_model.Asset(config_path)

    def _decode(self, image_bytes):
        """uint8 [H, W, 3]; InvalidArgument naming the problem for unreadable bytes."""
        head = tf.strings.substr(image_bytes, 0, 8)
        # inference.sniff_image_format in graph ops: the formats tf.io.decode_image reads.
        known = tf.reduce_any([tf.equal(tf.strings.substr(image_bytes, 0, len(magic)), magic)
                               for magic in inference.IMAGE_MAGIC.values()])
        check = tf.debugging.Assert(known, [
            "image_bytes is not a JPEG, PNG, GIF or BMP image; its first bytes are", head])
        jpeg = inference.IMAGE_MAGIC["jpeg"]
        is_jpeg = tf.equal(tf.strings.substr(image_bytes, 0, len(jpeg)), jpeg)
        with tf.control_dependencies([check]):
            height, width = _header_size(image_bytes, is_jpeg)
        small_enough = tf.debugging.Assert(
            height * width <= MAX_IMAGE_PIXELS,
            ["image_bytes is too large: height, width and the most pixels served are",
             height, width, tf.constant(MAX_IMAGE_PIXELS, tf.int64),
             "; downscale the image before sending it"])
        with tf.control_dependencies([small_enough]):
            # INTEGER_ACCURATE is libjpeg's islow DCT, which Pillow uses: the pixels
            # then equal the numpy path's (TF's default fast DCT differs by up to
            # ~10 grey levels).
            image = tf.cond(
                is_jpeg,
                lambda: tf.io.decode_jpeg(image_bytes, channels=3,
                                          dct_method="INTEGER_ACCURATE"),
                lambda: tf.ensure_shape(tf.io.decode_image(
                    image_bytes, channels=3, expand_animations=False), [None, None, 3]))
        image = tf.ensure_shape(image, [None, None, 3])
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        new_h, new_w, _, _ = graph_ops.resize_pad_geometry_tf(h, w, self.size)
        # The numpy path refuses such images too (image_ops.resize_pad_geometry).
        fits = tf.debugging.Assert(tf.logical_and(new_h >= 1, new_w >= 1), [
            "the image is too thin: resized to the model input its short side "
            "would become 0 pixels; image height, width and input size are", h, w, self.size])
        with tf.control_dependencies([fits]):
            return tf.identity(image)

    def _encode(self, expression):
        """int32 [T] word ids; InvalidArgument for non-UTF-8 or blank expressions."""
        utf8 = tf.debugging.Assert(graph_ops.is_valid_utf8_tf(expression), [
            "expression is not valid UTF-8 text: encode the sentence as UTF-8"])
        with tf.control_dependencies([utf8]):
            blank = tf.debugging.Assert(tf.logical_not(graph_ops.is_blank_tf(expression)), [
                "expression is empty or whitespace only: give a referring expression"])
        with tf.control_dependencies([blank]):
            return graph_ops.tokenize_and_encode_tf(expression, self.table, self.num_words)

    def _tokens(self, expression):
        """string [T]: the tokens behind the word ids, front-padded with ''."""
        tokens = graph_ops.tokenize_tf(expression)[:self.num_words]
        pad = tf.fill([self.num_words - tf.size(tokens)], "")
        return tf.reshape(tf.concat([pad, tokens], 0), [self.num_words])

    def _run(self, image_bytes, expression, explain: bool):
        image = self._decode(image_bytes)
        words = self._encode(expression)
        h, w = tf.shape(image)[0], tf.shape(image)[1]
        inputs = inference.preprocess_image_tf(image, self.size)[None]
        word_maps = explain and self.is_rmi
        out = self.model.segment(self.model.visual_features(inputs), words[None],
                                 return_word_maps=word_maps)
        up = out["upsampled_logits"][0, :, :, 0]
        mask = inference.logits_to_mask_tf(up, h, w)
        with tf.control_dependencies([words]):  # after _encode's input checks
            num_tokens = tf.size(graph_ops.tokenize_tf(expression))
        read = words[self.num_words - tf.minimum(num_tokens, self.num_words):]
        result = {"mask": tf.cast(mask, tf.uint8),
                  "probabilities": inference.unpad_maps_tf(tf.sigmoid(up)[None], h, w)[0],
                  "word_ids": words,
                  "num_unknown_words": tf.reduce_sum(
                      tf.cast(tf.equal(read, self.unk_id), tf.int32)),
                  "num_dropped_words": tf.maximum(num_tokens - self.num_words, 0)}
        if explain:
            result["tokens"] = self._tokens(expression)
        if word_maps:
            result["word_response_maps"] = inference.unpad_maps_tf(
                out["word_response_maps"][0], h, w)
            word_up = resize_bilinear(out["word_logits"][0], (self.size, self.size),
                                      self.model.config.upsample)[..., 0]  # [T, S, S]
            result["word_masks"] = tf.cast(tf.stack(
                [inference.logits_to_mask_tf(word_up[t], h, w)
                 for t in range(self.num_words)]), tf.uint8)
        return result

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="image_bytes"),
                                  tf.TensorSpec([], tf.string, name="expression")])
    def serve(self, image_bytes, expression):
        return self._run(image_bytes, expression, explain=False)

    @tf.function(input_signature=[tf.TensorSpec([], tf.string, name="image_bytes"),
                                  tf.TensorSpec([], tf.string, name="expression")])
    def explain(self, image_bytes, expression):
        return self._run(image_bytes, expression, explain=True)

    @tf.function
    def segment_batch(self, images, words):
        out = self.model((images, words))
        return {"upsampled_logits": out["upsampled_logits"],
                "probabilities": out["probabilities"]}


def _header_size(image_bytes, is_jpeg):
    """(height, width) int64 scalars read from the image header, without decoding.

    JPEG: `tf.io.extract_jpeg_shape` (its own error for a corrupt header); PNG:
    the IHDR big-endian fields; GIF: the logical screen; BMP: the DIB header
    (absolute height, as rows may be stored top-down). Short input reads as 0.
    """
    head = tf.strings.substr(tf.strings.join([tf.strings.substr(image_bytes, 0, 32),
                                              tf.constant(b"\0" * 32)]), 0, 32)
    b = tf.cast(tf.io.decode_raw(head, tf.uint8), tf.int64)  # [32]

    def big(i, n):
        return tf.add_n([b[i + k] * (256 ** (n - 1 - k)) for k in range(n)])

    def little(i, n):
        return tf.add_n([b[i + k] * (256 ** k) for k in range(n)])

    def signed32(value):
        return tf.abs(tf.where(value >= 2 ** 31, value - 2 ** 32, value))

    def not_jpeg():
        first = tf.strings.substr(image_bytes, 0, 2)
        return tf.case([
            (tf.equal(first, inference.IMAGE_MAGIC["png"][:2]),
             lambda: tf.stack([big(20, 4), big(16, 4)])),
            (tf.equal(first, inference.IMAGE_MAGIC["gif"][:2]),
             lambda: tf.stack([little(8, 2), little(6, 2)]))],
            default=lambda: tf.stack([signed32(little(22, 4)), signed32(little(18, 4))]))

    size = tf.cond(is_jpeg,
                   lambda: tf.cast(tf.io.extract_jpeg_shape(image_bytes)[:2], tf.int64),
                   not_jpeg)
    return size[0], size[1]


def usage_snippet(name: str, model_cfg) -> str:
    """README-ready Markdown: how to call the export without tf_rmi."""
    maps = (" and the per-word `word_response_maps`, `word_masks` [T, H, W]"
            if model_cfg.model == "RMI" else "")
    return f"""# {name}: referring image segmentation SavedModel ({model_cfg.model})

Needs only TensorFlow (no tf_rmi):

```python
import tensorflow as tf

model = tf.saved_model.load("{name}")
serve = model.signatures["serving_default"]
with open("photo.jpg", "rb") as f:
    out = serve(image_bytes=tf.constant(f.read()),
                expression=tf.constant("the man on the left"))
mask = out["mask"].numpy()                    # uint8 [H, W], 1 = referred object
probabilities = out["probabilities"].numpy()  # float32 [H, W]
```

- `serving_default(image_bytes, expression)` -> `mask`, `probabilities`, `word_ids` [{model_cfg.num_words}],
  `num_unknown_words` (words read as <unk>), `num_dropped_words` (tokens beyond the first {model_cfg.num_words}, not read)
- `explain(image_bytes, expression)` -> the same plus `tokens` [{model_cfg.num_words}]{maps}
- `segment_batch(images float32 [N, {model_cfg.input_size}, {model_cfg.input_size}, 3] (RGB->BGR minus the
  Caffe mean), words int32 [N, {model_cfg.num_words}])` -> `upsampled_logits`, `probabilities`

Bad input (not an image, not UTF-8, empty expression) raises
`tf.errors.InvalidArgumentError` with a message saying what is wrong.
Inspect with `saved_model_cli show --dir {name} --all`.
"""


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
    if (os.path.exists(output_dir) and os.listdir(output_dir)
            and not os.path.exists(os.path.join(output_dir, "saved_model.pb"))):
        raise ValueError(f"{output_dir} exists and is not a SavedModel: export to a new "
                         "directory (an existing export is replaced, nothing else is)")
    parent = atomic_io.ensure_writable_dir(os.path.dirname(output_dir))
    tmp = tempfile.mkdtemp(prefix=os.path.basename(output_dir) + ".tmp-", dir=parent)
    try:
        # mkdtemp makes the directory 0700; an export is for others to read.
        os.chmod(tmp, 0o777 & ~_umask())
        tf.saved_model.save(server, tmp, signatures=signatures)
        with open(os.path.join(tmp, "USAGE.md"), "w", encoding="utf-8") as f:
            f.write(usage_snippet(os.path.basename(output_dir), model.config))
        if os.path.exists(output_dir):
            old = output_dir + ".old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(output_dir, old)
            os.replace(tmp, output_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, output_dir)
    except (OSError, tf.errors.OpError) as err:
        # Unwritable or full: nothing half-written stays, an earlier export is kept.
        shutil.rmtree(tmp, ignore_errors=True)
        _restore_previous(output_dir)
        raise OSError(atomic_io.unwritable_message(output_dir, err)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _restore_previous(output_dir)
        raise
    return output_dir


def _restore_previous(output_dir: str) -> None:
    """Puts `<output_dir>.old` back when a replacement failed between its two renames."""
    old = output_dir + ".old"
    if os.path.isdir(old) and not os.path.exists(output_dir):
        os.replace(old, output_dir)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def export_run(checkpoint: str, output_dir: str, vocab_file: Optional[str] = None) -> str:
    """Restores a run (directory or checkpoint prefix) and exports it."""
    from tf_rmi.config import CONFIG_FILENAME
    from tf_rmi.training.run_dir import resolve_checkpoint, restore_model, run_vocab_file

    model, run_config, _ = restore_model(checkpoint)
    run_dir, _ = resolve_checkpoint(checkpoint)
    vocab_path = vocab_file or run_vocab_file(run_dir, run_config)
    if not os.path.exists(vocab_path):
        raise FileNotFoundError(f"Vocabulary {vocab_path} not found: pass --vocab_file")
    return export_saved_model(model, vocab_path, output_dir,
                              os.path.join(run_dir, CONFIG_FILENAME))
