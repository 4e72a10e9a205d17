"""Building blocks of the RMI and LSTM-baseline heads, as the original computes them.

Everything here reproduces `RMI_model.py` / `LSTM_model.py` of the original
release (chenxi116/TF-phrasecut-public, TensorFlow 1.2.1):

- `l2_normalize`: `tf.nn.l2_normalize(x, 3)` of TF1, i.e.
  `x * rsqrt(max(sum(x^2), 1e-12))` over channels;
- `spatial_features`: `util/processing_tools.generate_spatial_batch`;
- `tf1_resize_bilinear`: `tf.image.resize_bilinear` of TF1 (no align_corners,
  no half-pixel centres);
- `output_transform`: `0.5*(log(1+1e-3+h) - log(1+1e-3-h))` after the last step;
- `BasicLSTMCell`: `tf.nn.rnn_cell.BasicLSTMCell` (one kernel on `[x, h]`,
  gates i|j|f|o, forget bias 1.0 added at run time, Glorot-uniform kernel as
  TF1's default `get_variable` initializer, zero bias);
- `MultimodalLSTMCell`: the RMI convolutional LSTM (the `ALSTM` cell applied to
  every cell of the feature map, `RMI_model.build_graph`), with the efficient
  row-block formulation besides the original concatenation;
- `Conv1x1`: the release's `_conv(name, x, 1, ...)` (kernel `DW` HWIO, `biases`).
"""
from __future__ import annotations

import collections

import keras
import numpy as np
import tensorflow as tf

SPATIAL_DIM = 8
TRANSFORM_EPSILON = 1e-3  # the "1 + 1e-3" inside both logs of the output transform
L2_EPSILON = 1e-12  # tf.nn.l2_normalize's default in TF1 (bound on the squared norm)
UPSAMPLE_MODES = ("tf1", "half_pixel")


def l2_normalize(x: tf.Tensor, axis: int = -1) -> tf.Tensor:
    """`x / sqrt(max(sum(x^2), 1e-12))` over `axis` (TF1 `tf.nn.l2_normalize`)."""
    return tf.math.l2_normalize(x, axis=axis, epsilon=L2_EPSILON)


def spatial_features(h: int, w: int) -> np.ndarray:
    """[h, w, 8] float32: `[xmin, ymin, xmax, ymax, xctr, yctr, 1/w, 1/h]` per cell.

    As `generate_spatial_batch`: for row i and column j of an h x w map,
    `xmin = j/w*2-1`, `xmax = (j+1)/w*2-1`, likewise y with i and h, computed in
    float64 and stored as float32.
    """
    ys, xs = np.meshgrid(np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64),
                         indexing="ij")
    xmin, xmax = xs / w * 2 - 1, (xs + 1) / w * 2 - 1
    ymin, ymax = ys / h * 2 - 1, (ys + 1) / h * 2 - 1
    feats = np.stack([xmin, ymin, xmax, ymax, (xmin + xmax) / 2, (ymin + ymax) / 2,
                      np.full_like(xs, 1.0 / w), np.full_like(xs, 1.0 / h)], axis=-1)
    return feats.astype(np.float32)


def tf1_resize_bilinear(x: tf.Tensor, size, mode: str = "tf1") -> tf.Tensor:
    """Bilinear resize of [N, h, w, C] to `size` (out_h, out_w).

    "tf1": TF1 `tf.image.resize_bilinear` (align_corners=False, no half-pixel
    centres): output pixel i reads input position i*in/out (floor and floor+1
    neighbours, the latter clamped), so the last out/in rows repeat the last
    input row. TF2's `tf.image.resize` and Keras' resizing use half-pixel
    centres, which moves a 40 -> 320 upsampling by half an input cell.
    "half_pixel": centres aligned (a non-original option).
    """
    if mode not in UPSAMPLE_MODES:
        raise ValueError(f"Unknown upsample mode {mode!r}: use one of {UPSAMPLE_MODES}")
    return tf.raw_ops.ResizeBilinear(images=x, size=size, align_corners=False,
                                     half_pixel_centers=(mode == "half_pixel"))


# The name the rest of the package uses.
resize_bilinear = tf1_resize_bilinear


def output_transform(h: tf.Tensor) -> tf.Tensor:
    """`0.5*(log(1+1e-3+h) - log(1+1e-3-h))`: about atanh(h), but not exactly
    (the 1e-3 keeps it finite at |h| = 1), as `RMI_model.build_graph`."""
    one = tf.cast(1.0 + TRANSFORM_EPSILON, h.dtype)
    return 0.5 * (tf.math.log(one + h) - tf.math.log(one - h))


def response_map(transformed: tf.Tensor, size, mode: str = "tf1") -> tf.Tensor:
    """[N, h, w, M] transformed mLSTM output -> [N, S, S] float32 (paper Fig. 6):
    upsampled, then averaged over channels (the original's `mult_state`; taken
    after the transform and before the ReLU)."""
    up = tf1_resize_bilinear(tf.cast(transformed, tf.float32), size, mode)
    return tf.reduce_mean(up, axis=-1)


def _value(variable, dtype) -> tf.Tensor:
    """A variable's value in the compute dtype (mixed precision)."""
    value = tf.convert_to_tensor(variable)
    return value if value.dtype == dtype else tf.cast(value, dtype)


@keras.saving.register_keras_serializable(package="tf_rmi")
class Conv1x1(keras.layers.Layer):
    """1x1 convolution with bias, as the release's `_conv(name, x, 1, in, out)`.

    Kernel HWIO `[1, 1, in, out]` (original name `DW`, Glorot-uniform as
    `xavier_initializer_conv2d`), bias `[out]` (`biases`, zeros).
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
        kernel = tf.reshape(_value(self.kernel, x.dtype), (self.in_channels, self.out_channels))
        return tf.tensordot(x, kernel, 1) + _value(self.bias, x.dtype)

    def get_config(self):
        return {**super().get_config(), "in_channels": self.in_channels,
                "out_channels": self.out_channels}


def lstm_state_update(z: tf.Tensor, c: tf.Tensor, forget_bias: float = 1.0):
    """TF1 `BasicLSTMCell` from pre-activations z [..., 4U] (bias included) and
    c [..., U]: gates i|j|f|o, `c' = c*sigmoid(f + 1) + sigmoid(i)*tanh(j)`,
    `h' = tanh(c')*sigmoid(o)`. Returns (c', h')."""
    i, j, f, o = tf.split(z, 4, axis=-1)
    c_new = c * tf.sigmoid(f + forget_bias) + tf.sigmoid(i) * tf.tanh(j)
    return c_new, tf.tanh(c_new) * tf.sigmoid(o)


@keras.saving.register_keras_serializable(package="tf_rmi")
class BasicLSTMCell(keras.layers.Layer):
    """TF1 `BasicLSTMCell`: kernel `[input + units, 4*units]` (rows: input, then
    h), bias `[4*units]`, gate columns i|j|f|o, forget bias 1.0 added at run time
    (not stored). `call(x [..., input], c [..., units], h [..., units]) -> (c', h')`.
    """

    FORGET_BIAS = 1.0

    def __init__(self, input_dim: int, units: int, **kwargs):
        super().__init__(**kwargs)
        self.input_dim, self.units = int(input_dim), int(units)

    def build(self, input_shape=None):
        # TF1 get_variable's default initializer is Glorot-uniform; _linear's bias is 0.
        self.kernel = self.add_weight(name="kernel",
                                      shape=(self.input_dim + self.units, 4 * self.units),
                                      initializer="glorot_uniform")
        self.bias = self.add_weight(name="bias", shape=(4 * self.units,), initializer="zeros")
        self.built = True

    def gates_to_state(self, z, c):
        """From the pre-activations z [..., 4*units] (bias included) to (c', h')."""
        return lstm_state_update(z, c, self.FORGET_BIAS)

    def call(self, x, c, h):
        z = (tf.tensordot(tf.concat([x, h], -1), _value(self.kernel, x.dtype), 1)
             + _value(self.bias, x.dtype))
        return self.gates_to_state(z, c)

    def get_config(self):
        return {**super().get_config(), "input_dim": self.input_dim, "units": self.units}


# Row blocks of the multimodal LSTM kernel, in the original's concatenation order.
KernelBlocks = collections.namedtuple("KernelBlocks",
                                      ["visual", "word", "lang", "spatial", "recurrent"])


@keras.saving.register_keras_serializable(package="tf_rmi")
class MultimodalLSTMCell(BasicLSTMCell):
    """The RMI multimodal LSTM: one BasicLSTMCell shared by all cells of the
    feature map (a 1x1 convolutional LSTM; paper Sec. 3.3, Eq. 3-4).

    Per-cell input at step t: `[v (D), w_t (E), l2norm(h_t) (L), s (8)]`
    (`feat_all` of the original), state `units` (M). The kernel is the
    original's `[D + E + L + 8 + M, 4M]` (3508 x 2000 at paper size), rows in
    that order. Two formulations give the same result up to float32 rounding:

    - straightforward (`efficient=False`): concatenate the full per-cell input
      and multiply by the whole kernel at every step, as the original graph;
    - efficient: split the kernel rows once (`kernel_blocks`); `static(v, s)`
      (visual + spatial rows + bias, [N,h,w,4M]) once per image;
      `dynamic(w_t, lang_t)` (word + sentence rows, [N,4M]) once per step and
      broadcast over the cells; per cell and step only the recurrent
      `M -> 4M` product and the gate math (`step`).
    """

    def __init__(self, visual_dim: int, embed_dim: int, lang_dim: int, units: int, **kwargs):
        kwargs.pop("input_dim", None)
        self.visual_dim, self.embed_dim, self.lang_dim = (int(visual_dim), int(embed_dim),
                                                          int(lang_dim))
        super().__init__(self.visual_dim + self.embed_dim + self.lang_dim + SPATIAL_DIM, units,
                         **kwargs)

    def kernel_blocks(self, dtype=tf.float32) -> KernelBlocks:
        """The kernel split by input part, in `dtype`. Split once per forward
        pass: slicing inside every step would make the backward pass build a
        dense kernel-sized gradient per slice and step."""
        kernel = _value(self.kernel, dtype)
        sizes = [self.visual_dim, self.embed_dim, self.lang_dim, SPATIAL_DIM, self.units]
        return KernelBlocks(*tf.split(kernel, sizes, axis=0))

    def static(self, v, s, blocks: KernelBlocks = None):
        """[N, h, w, 4M] = v @ K_v + s @ K_s + bias: the step-invariant part.

        v: [N, h, w, D] (l2-normalised); s: [N, h, w, 8] or [h, w, 8]."""
        blocks = blocks or self.kernel_blocks(v.dtype)
        return (tf.tensordot(v, blocks.visual, 1) + tf.tensordot(s, blocks.spatial, 1)
                + _value(self.bias, v.dtype))

    def dynamic(self, word, lang, blocks: KernelBlocks = None):
        """[N, 4M] = w_t @ K_w + l2norm(h_t) @ K_l: the same for every cell."""
        blocks = blocks or self.kernel_blocks(word.dtype)
        return tf.matmul(word, blocks.word) + tf.matmul(lang, blocks.lang)

    def step(self, static, dynamic, c, h, blocks: KernelBlocks = None, h_is_zero: bool = False):
        """One step from the precomputed parts; c, h: [N, h, w, M] -> (c', h').

        `h_is_zero=True` says that every h is exactly zero (the first step of
        the sequence, from the zero state): the recurrent product, exactly zero
        then, is skipped, and with it its two backward matmuls. A Python bool
        only: a tf.cond here would hide the step's matmuls from the FLOP count
        of the benchmarks (graph_flops does not see into it)."""
        blocks = blocks or self.kernel_blocks(h.dtype)
        z = static + dynamic[:, None, None, :]
        if h_is_zero:
            return self.gates_to_state(z, c)
        return self.gates_to_state(z + tf.tensordot(h, blocks.recurrent, 1), c)

    def straightforward_step(self, v, s, word, lang, c, h):
        """One step as the original graph: the full per-cell input
        `[v, tile(w_t), tile(lang_t), s, h]` times the whole kernel."""
        shape = tf.shape(v)
        n, rows, cols = shape[0], shape[1], shape[2]
        per_cell = tf.concat([
            v,
            tf.broadcast_to(word[:, None, None, :], tf.stack([n, rows, cols, self.embed_dim])),
            tf.broadcast_to(lang[:, None, None, :], tf.stack([n, rows, cols, self.lang_dim])),
            tf.broadcast_to(tf.cast(s, v.dtype), tf.stack([n, rows, cols, SPATIAL_DIM]))],
            axis=-1)
        return BasicLSTMCell.call(self, per_cell, c, h)

    def call(self, v, s, word, lang, c, h, efficient: bool = True):
        """One step on its own: v [N,h,w,D], s [N,h,w,8], word [N,E], lang [N,L]
        (already l2-normalised), c, h [N,h,w,M] -> (c', h')."""
        if not efficient:
            return self.straightforward_step(v, s, word, lang, c, h)
        blocks = self.kernel_blocks(v.dtype)
        return self.step(self.static(v, s, blocks), self.dynamic(word, lang, blocks), c, h,
                         blocks)

    def get_config(self):
        config = super().get_config()
        config.pop("input_dim", None)
        config.update(visual_dim=self.visual_dim, embed_dim=self.embed_dim,
                      lang_dim=self.lang_dim)
        return config
