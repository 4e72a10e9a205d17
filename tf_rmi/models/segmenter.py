"""The referring segmentation model: trunk, visual projection and RMI / LSTM head.

`ReferringSegmenter` reproduces `RMI_model.py` and `LSTM_model.py` of the
original release (chenxi116/TF-phrasecut-public):

- visual feature: `conv0` (1x1, 2048 -> 1000, with bias) on DeepLab's res5c, or
  the ImageNet classifier `fc1000` applied as a 1x1 conv on ResNet's final ReLU;
  no activation before the l2-normalisation over channels;
- word embedding (uniform in [-0.08, 0.08]) and a language LSTM (TF1
  `BasicLSTMCell`: gates i, j, f, o; forget bias 1.0 added at run time);
- RMI: a multimodal LSTM shared by all cells of the feature map (a 1x1
  convolutional LSTM) whose per-cell input at step t is
  `[v, w_t, l2norm(h_t), s]` (paper Sec. 3.3); after the last step its output h
  goes through `0.5*(log(1+1e-3+h) - log(1+1e-3-h))`, ReLU and `conv2` (1x1 -> 1);
- LSTM baseline: `[v, l2norm(h_T), s]` -> `conv1` (1x1) -> ReLU -> `conv2`;
- a step whose word id is 0 (`<pad>`) leaves every state unchanged, wherever it
  is in the sequence (the original's `tf.cond` per step);
- logits [N, h, w, 1] upsampled with TF1 `resize_bilinear` semantics.

The efficient formulation (default) splits the multimodal LSTM kernel by input
part: the visual + spatial projection is computed once per image, the word +
sentence projection once per step and broadcast over the cells, leaving only the
recurrent `units -> 4*units` product per cell and step. `efficient_head=False`
concatenates the full per-cell input at every step, as the original graph did;
both use the same kernel variable and agree to float32 rounding.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Optional

import keras
import numpy as np
import tensorflow as tf

from tf_rmi.config import ModelConfig
from tf_rmi.models.trunk import build_trunk

SPATIAL_DIM = 8
TRANSFORM_EPSILON = 1e-3  # the "1 + 1e-3" inside both logs of the output transform


def spatial_features(h: int, w: int) -> np.ndarray:
    """[h, w, 8] float32: `[xmin, ymin, xmax, ymax, xctr, yctr, 1/w, 1/h]` per cell.

    As `generate_spatial_batch` of the original: for row i, column j,
    `xmin = j/w*2-1`, `xmax = (j+1)/w*2-1`, likewise y with i and h.
    """
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                         indexing="ij")
    xmin, xmax = xs / w * 2 - 1, (xs + 1) / w * 2 - 1
    ymin, ymax = ys / h * 2 - 1, (ys + 1) / h * 2 - 1
    feats = np.stack([xmin, ymin, xmax, ymax, (xmin + xmax) / 2, (ymin + ymax) / 2,
                      np.full_like(xs, 1.0 / w), np.full_like(xs, 1.0 / h)], axis=-1)
    return feats.astype(np.float32)


def resize_bilinear(x: tf.Tensor, size, mode: str = "tf1") -> tf.Tensor:
    """Bilinear resize of [N, h, w, C] to `size`.

    "tf1": TF1 `tf.image.resize_bilinear` (align_corners=False, no half-pixel
    centres): output pixel i samples input position i*in/out, so the last
    out/in rows repeat the last input row. "half_pixel": centres aligned.
    """
    if mode not in ("tf1", "half_pixel"):
        raise ValueError(f"Unknown upsample mode {mode!r}: use 'tf1' or 'half_pixel'")
    return tf.raw_ops.ResizeBilinear(images=x, size=size, align_corners=False,
                                     half_pixel_centers=(mode == "half_pixel"))


def output_transform(h: tf.Tensor) -> tf.Tensor:
    """`0.5*(log(1+1e-3+h) - log(1+1e-3-h))`, about atanh(h), as the original."""
    one = tf.cast(1.0 + TRANSFORM_EPSILON, h.dtype)
    return 0.5 * (tf.math.log(one + h) - tf.math.log(one - h))


def l2_normalize(x: tf.Tensor) -> tf.Tensor:
    """`tf.nn.l2_normalize` over the last axis (epsilon 1e-12, as TF1's default)."""
    return tf.math.l2_normalize(x, axis=-1, epsilon=1e-12)


@keras.saving.register_keras_serializable(package="tf_rmi")
class Conv1x1(keras.layers.Layer):
    """1x1 convolution with bias. Kernel HWIO `[1, 1, in, out]` ('DW'), bias ('biases').

    `call(x [..., in]) -> [..., out]`.
    """

    def __init__(self, in_channels: int, out_channels: int, **kwargs):
        super().__init__(**kwargs)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)

    def build(self, input_shape=None):
        self.kernel = self.add_weight(name="DW", shape=(1, 1, self.in_channels, self.out_channels),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="biases", shape=(self.out_channels,), initializer="zeros")
        self.built = True

    def call(self, x):
        kernel = tf.cast(tf.reshape(self.kernel, (self.in_channels, self.out_channels)), x.dtype)
        return tf.tensordot(x, kernel, 1) + tf.cast(self.bias, x.dtype)

    def get_config(self):
        return {**super().get_config(), "in_channels": self.in_channels,
                "out_channels": self.out_channels}


@keras.saving.register_keras_serializable(package="tf_rmi")
class BasicLSTMCell(keras.layers.Layer):
    """TF1 `BasicLSTMCell` math: kernel `[input + units, 4*units]`, gates i|j|f|o.

    `c' = c*sigmoid(f + 1.0) + sigmoid(i)*tanh(j)`, `h' = tanh(c')*sigmoid(o)`;
    the forget bias 1.0 is added at run time, not stored. `call(x [..., input],
    c [..., units], h [..., units]) -> (c', h')`.
    """

    FORGET_BIAS = 1.0

    def __init__(self, input_dim: int, units: int, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.units = int(input_dim), int(units)

    def build(self, input_shape=None):
        self.kernel = self.add_weight(name="kernel", shape=(self.input_dim + self.units,
                                                            4 * self.units),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(4 * self.units,), initializer="zeros")
        self.built = True

    def gates_to_state(self, z, c):
        """From the pre-activations z [..., 4*units] (bias included) to (c', h')."""
        i, j, f, o = tf.split(z, 4, axis=-1)
        c_new = c * tf.sigmoid(f + self.FORGET_BIAS) + tf.sigmoid(i) * tf.tanh(j)
        return c_new, tf.tanh(c_new) * tf.sigmoid(o)

    def call(self, x, c, h):
        z = (tf.tensordot(tf.concat([x, h], -1), tf.cast(self.kernel, x.dtype), 1)
             + tf.cast(self.bias, x.dtype))
        return self.gates_to_state(z, c)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "units": self.units}


@keras.saving.register_keras_serializable(package="tf_rmi")
class MultimodalLSTMCell(BasicLSTMCell):
    """The RMI multimodal LSTM, a 1x1 convolutional LSTM over the feature map.

    Per-cell input `[v (D), w_t (E), l2norm(h_t) (U), s (8)]`, state `units`;
    kernel `[D + E + U + 8 + units, 4*units]` in that row order (as the
    original's concatenation). The efficient path uses the row blocks:
    `static(v, s)` once per image, `dynamic(w_t, lang_t)` once per step, and
    `step(static, dynamic, c, h)` per step with the recurrent block only.
    """

    def __init__(self, visual_dim: int, embed_dim: int, lang_dim: int, units: int, **kwargs):
        kwargs.pop("input_dim", None)
        self.visual_dim, self.embed_dim, self.lang_dim = int(visual_dim), int(embed_dim), int(lang_dim)
        super().__init__(self.visual_dim + self.embed_dim + self.lang_dim + SPATIAL_DIM, units,
                         **kwargs)

    def _rows(self, start, stop, dtype):
        return tf.cast(self.kernel[start:stop], dtype)

    def static(self, v, s):
        """[N, h, w, 4U]: visual and spatial rows plus the bias; step-invariant."""
        d, e, u = self.visual_dim, self.embed_dim, self.lang_dim
        return (tf.tensordot(v, self._rows(0, d, v.dtype), 1)
                + tf.tensordot(s, self._rows(d + e + u, d + e + u + SPATIAL_DIM, v.dtype), 1)
                + tf.cast(self.bias, v.dtype))

    def dynamic(self, word, lang):
        """[N, 4U]: word and sentence rows; the same for every cell."""
        d, e, u = self.visual_dim, self.embed_dim, self.lang_dim
        return (tf.matmul(word, self._rows(d, d + e, word.dtype))
                + tf.matmul(lang, self._rows(d + e, d + e + u, word.dtype)))

    def step(self, static, dynamic, c, h):
        """One step on [N, h, w, *] states from precomputed projections."""
        recurrent = tf.tensordot(h, self._rows(self.input_dim, None, h.dtype), 1)
        return self.gates_to_state(static + dynamic[:, None, None, :] + recurrent, c)

    def get_config(self):
        config = super().get_config()
        config.update(visual_dim=self.visual_dim, embed_dim=self.embed_dim,
                      lang_dim=self.lang_dim)
        return config


@keras.saving.register_keras_serializable(package="tf_rmi")
class ReferringSegmenter(keras.Model):
    """RMI or LSTM-baseline referring segmentation model (see module docstring).

    `call((images [N,S,S,3] caffe-preprocessed BGR, words [N,T] int32))` or
    `call({"images", "words"})` returns a dict of float32 tensors:
    `logits` [N,h,w,1], `upsampled_logits` [N,S,S,1], `probabilities` [N,S,S,1],
    and for RMI `response_map` [N,S,S] (paper Fig. 6: the transformed final
    state, upsampled, averaged over channels; taken before the ReLU).
    """

    def __init__(self, config: Optional[ModelConfig] = None, **kwargs):
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = ModelConfig(**config)
        self.config = config or ModelConfig()
        c = self.config
        if c.model not in ("RMI", "LSTM"):
            raise ValueError(f"Unknown model {c.model!r}: use 'RMI' or 'LSTM'")
        self.trunk = build_trunk(c)
        # The original names: text_objseg/conv0 (deeplab) or ResNet/fc1000 (resnet).
        self.visual_proj = Conv1x1(self.trunk.output_channels, c.visual_dim,
                                   name="fc1000" if c.weights == "resnet" else "conv0")
        self.lang_lstm = BasicLSTMCell(c.embed_dim, c.lstm_units, name="WLSTM")
        if c.model == "RMI":
            self.mlstm = MultimodalLSTMCell(c.visual_dim, c.embed_dim, c.lstm_units,
                                            c.mlstm_units, name="ALSTM")
        else:
            self.conv1 = Conv1x1(c.visual_dim + c.lstm_units + SPATIAL_DIM, c.mlstm_units,
                                 name="conv1")
        self.conv2 = Conv1x1(c.mlstm_units, 1, name="conv2")

    def build(self, input_shape=None):
        c = self.config
        self.embedding = self.add_weight(
            name="embedding", shape=(c.vocab_size, c.embed_dim),
            initializer=keras.initializers.RandomUniform(-0.08, 0.08))
        for layer in self.head_layers():
            layer.build(None)
        self.built = True

    def head_layers(self):
        layers = [self.visual_proj, self.lang_lstm]
        layers += [self.mlstm] if self.config.model == "RMI" else [self.conv1]
        return layers + [self.conv2]

    # ------------------------------------------------------------------ forward

    def visual_features(self, images) -> tf.Tensor:
        """[N, h, w, visual_dim]: conv0 / fc1000 output, before l2-normalisation."""
        images = tf.cast(images, self.compute_dtype)
        return self.visual_proj(self.trunk(images))

    def call(self, inputs, training=False):
        if isinstance(inputs, dict):
            images, words = inputs["images"], inputs["words"]
        else:
            images, words = inputs
        return self.segment(self.visual_features(images), words)

    def segment(self, visual, words, image_index=None,
                return_word_maps: bool = False) -> Dict[str, tf.Tensor]:
        """The head on precomputed visual features.

        visual: [M, h, w, visual_dim]; words: [N, T] int; image_index: optional
        [N] int picking the row of `visual` for each expression (one trunk pass
        shared by all expressions of an image). With `return_word_maps`, RMI also
        returns `word_response_maps` [N,T,S,S] and `word_logits` [N,T,h,w,1]:
        what the model would output if the expression ended at step t.
        """
        c = self.config
        dtype = self.compute_dtype
        words = tf.cast(words, tf.int32)
        visual = tf.cast(visual, dtype)
        if image_index is not None:
            visual = tf.gather(visual, tf.cast(image_index, tf.int32))
        n = tf.shape(words)[0]
        h, w = int(visual.shape[1]), int(visual.shape[2])
        num_steps = int(words.shape[1])
        size = (c.input_size, c.input_size)
        v = l2_normalize(visual)
        s = tf.broadcast_to(tf.constant(spatial_features(h, w), dtype), tf.stack([n, h, w, 8]))
        embedded = tf.cast(tf.gather(self.embedding, words), dtype)  # [N, T, E]
        c_w = tf.zeros(tf.stack([n, c.lstm_units]), dtype)
        h_w = c_w
        outputs: Dict[str, tf.Tensor] = {}
        if c.model == "RMI":
            c_a = tf.zeros(tf.stack([n, h, w, c.mlstm_units]), dtype)
            h_a = c_a
            static = self.mlstm.static(v, s) if c.efficient_head else None
            word_maps, word_logits = [], []
            for t in range(num_steps):
                active = tf.not_equal(words[:, t], 0)
                word = embedded[:, t]

                def run_step(word=word, c_w=c_w, h_w=h_w, c_a=c_a, h_a=h_a):
                    c_w_new, h_w_new = self.lang_lstm(word, c_w, h_w)
                    lang = l2_normalize(h_w_new)
                    if c.efficient_head:
                        c_a_new, h_a_new = self.mlstm.step(
                            static, self.mlstm.dynamic(word, lang), c_a, h_a)
                    else:
                        per_cell = tf.concat([
                            v, tf.broadcast_to(word[:, None, None, :],
                                               tf.stack([n, h, w, c.embed_dim])),
                            tf.broadcast_to(lang[:, None, None, :],
                                            tf.stack([n, h, w, c.lstm_units])),
                            s], axis=-1)
                        c_a_new, h_a_new = self.mlstm(per_cell, c_a, h_a)
                    return c_w_new, h_w_new, c_a_new, h_a_new

                # Like the original's tf.cond, a step that is <pad> for the whole
                # batch runs nothing (front padding makes these the common case).
                c_w_new, h_w_new, c_a_new, h_a_new = tf.cond(
                    tf.reduce_any(active), run_step,
                    lambda c_w=c_w, h_w=h_w, c_a=c_a, h_a=h_a: (c_w, h_w, c_a, h_a))
                # A <pad> step carries every state unchanged (the original's tf.cond).
                keep_w, keep_a = active[:, None], active[:, None, None, None]
                c_w, h_w = tf.where(keep_w, c_w_new, c_w), tf.where(keep_w, h_w_new, h_w)
                c_a, h_a = tf.where(keep_a, c_a_new, c_a), tf.where(keep_a, h_a_new, h_a)
                if return_word_maps:
                    transformed = output_transform(h_a)
                    word_maps.append(tf.reduce_mean(
                        resize_bilinear(transformed, size, c.upsample), axis=-1))
                    word_logits.append(self.conv2(tf.nn.relu(transformed)))
            transformed = output_transform(h_a)
            logits = self.conv2(tf.nn.relu(transformed))
            outputs["response_map"] = tf.reduce_mean(
                resize_bilinear(tf.cast(transformed, tf.float32), size, c.upsample), axis=-1)
            if return_word_maps:
                outputs["word_response_maps"] = tf.cast(tf.stack(word_maps, 1), tf.float32)
                outputs["word_logits"] = tf.cast(tf.stack(word_logits, 1), tf.float32)
        else:
            for t in range(num_steps):
                keep = tf.not_equal(words[:, t], 0)[:, None]
                c_w_new, h_w_new = tf.cond(
                    tf.reduce_any(keep),
                    lambda x=embedded[:, t], c_w=c_w, h_w=h_w: self.lang_lstm(x, c_w, h_w),
                    lambda c_w=c_w, h_w=h_w: (c_w, h_w))
                c_w, h_w = tf.where(keep, c_w_new, c_w), tf.where(keep, h_w_new, h_w)
            lang = tf.broadcast_to(l2_normalize(h_w)[:, None, None, :],
                                   tf.stack([n, h, w, c.lstm_units]))
            logits = self.conv2(tf.nn.relu(self.conv1(tf.concat([v, lang, s], axis=-1))))
        logits = tf.cast(logits, tf.float32)
        upsampled = resize_bilinear(logits, size, c.upsample)
        outputs.update(logits=logits, upsampled_logits=upsampled,
                       probabilities=tf.sigmoid(upsampled))
        return outputs

    # ------------------------------------------------------------------ recipe

    def decayed_kernels(self):
        """Kernels under weight decay: conv0/fc1000, conv1, conv2 (the original's
        `DW` variables among the trained ones); the small trunk's kernels too,
        since it is trained. LSTM kernels and the embedding are not decayed."""
        kernels = [self.visual_proj.kernel, self.conv2.kernel]
        if self.config.model == "LSTM":
            kernels.append(self.conv1.kernel)
        if self.trunk.trainable:
            kernels += [v for v in self.trunk.trainable_variables if len(v.shape) == 4]
        return kernels

    def bias_variables(self):
        """Variables whose gradient the recipe doubles: the original multiplies
        variables named `biases` (conv0/fc1000, conv1, conv2); TF 1.2's LSTM
        cells name theirs `bias`, so those are not doubled. The small trunk's
        biases are doubled too (they play the conv-bias role)."""
        biases = [self.visual_proj.bias, self.conv2.bias]
        if self.config.model == "LSTM":
            biases.append(self.conv1.bias)
        if self.trunk.trainable:
            biases += [v for v in self.trunk.trainable_variables if len(v.shape) == 1]
        return biases

    def get_config(self):
        return {"config": dataclasses.asdict(self.config), "name": self.name}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def build_model(model_cfg: ModelConfig) -> ReferringSegmenter:
    """A ReferringSegmenter with every variable created (called once on zeros)."""
    model = ReferringSegmenter(model_cfg)
    size = model_cfg.input_size
    model((tf.zeros((1, size, size, 3)), tf.zeros((1, model_cfg.num_words), tf.int32)))
    return model
