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
# The layers and helpers are re-exported here: callers import them from either module.
from tf_rmi.models.layers import (SPATIAL_DIM, TRANSFORM_EPSILON, BasicLSTMCell,  # noqa: F401
                                  Conv1x1, KernelBlocks, MultimodalLSTMCell, l2_normalize,
                                  output_transform, resize_bilinear, response_map,
                                  spatial_features, tf1_resize_bilinear)
from tf_rmi.models.trunk import build_trunk

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

        visual: [M, h, w, visual_dim] (conv0 / fc1000 output); words: [N, T] int;
        image_index: optional [N] int picking the row of `visual` for each
        expression (one trunk pass shared by all expressions of an image; the
        efficient RMI head then also computes its per-image projection once per
        image). With `return_word_maps`, RMI also returns `word_response_maps`
        [N,T,S,S] and `word_logits` [N,T,h,w,1]: what the model would output if
        the expression ended at step t (a <pad> step repeats the previous maps).
        """
        c = self.config
        dtype = self.compute_dtype
        words = tf.cast(words, tf.int32)
        visual = tf.cast(visual, dtype)
        if image_index is not None:
            image_index = tf.cast(image_index, tf.int32)
        h, w = int(visual.shape[1]), int(visual.shape[2])
        size = (c.input_size, c.input_size)
        v = l2_normalize(visual)  # no activation before it (the original)
        s = tf.constant(spatial_features(h, w), dtype)  # [h, w, 8]
        embedded = tf.cast(tf.gather(self.embedding, words), dtype)  # [N, T, E]
        if c.model == "RMI":
            outputs, logits = self._rmi_head(v, s, image_index, words, embedded,
                                             return_word_maps)
        else:
            if image_index is not None:
                v = tf.gather(v, image_index)
            outputs, logits = {}, self._lstm_baseline_head(v, s, words, embedded)
        logits = tf.cast(logits, tf.float32)
        upsampled = tf1_resize_bilinear(logits, size, c.upsample)
        outputs.update(logits=logits, upsampled_logits=upsampled,
                       probabilities=tf.sigmoid(upsampled))
        return outputs

    def segment_one_image(self, visual, words) -> Dict[str, tf.Tensor]:
        """The head for N expressions of ONE image, each running only its own steps.

        visual: [1, h, w, visual_dim] (conv0 / fc1000 output); words: [N, T] int.
        Returns `logits`, `upsampled_logits`, `probabilities` (and for RMI
        `response_map`) for the N expressions, in their order; the same values as
        `segment(visual, words, image_index=zeros(N))` up to float32 rounding.

        For the efficient RMI head, the visual + spatial projection is computed
        once for the image and broadcast (never gathered per expression), and
        the expressions are sorted by the step of their first word: at step t
        only the k_t expressions that have started run (front padding makes
        them a prefix), so no step runs for an expression that has not started
        or, equivalently, that has ended. A <pad> id after the first word still
        leaves that expression's states unchanged, as in `segment`. Other heads
        fall back to `segment` with a shared trunk pass.
        """
        c = self.config
        words = tf.cast(words, tf.int32)
        if c.model != "RMI" or not c.efficient_head:
            return self.segment(visual, words,
                                image_index=tf.zeros(tf.shape(words)[:1], tf.int32))
        dtype = self.compute_dtype
        visual = tf.cast(visual, dtype)
        h, w = int(visual.shape[1]), int(visual.shape[2])
        size = (c.input_size, c.input_size)
        num_steps = int(words.shape[1])
        n = tf.shape(words)[0]
        nonpad = tf.not_equal(words, 0)
        # First step with a word (num_steps for an expression without words).
        first = tf.where(tf.reduce_any(nonpad, 1), tf.argmax(tf.cast(nonpad, tf.int32), 1,
                                                             output_type=tf.int32), num_steps)
        order = tf.argsort(first, stable=True)
        words = tf.gather(words, order)
        first = tf.gather(first, order)
        v = l2_normalize(visual)
        s = tf.constant(spatial_features(h, w), dtype)
        embedded = tf.cast(tf.gather(self.embedding, words), dtype)  # [N, T, E]
        blocks = self.mlstm.kernel_blocks(dtype)
        static = self.mlstm.static(v[:1], s, blocks)  # [1, h, w, 4M]: once per image
        # States of the expressions started so far (the first k rows).
        c_w = tf.zeros([0, c.lstm_units], dtype)
        h_w = c_w
        c_a = tf.zeros([0, h, w, c.mlstm_units], dtype)
        h_a = c_a
        k_prev = tf.constant(0, tf.int32)
        for t in range(num_steps):
            k = tf.reduce_sum(tf.cast(first <= t, tf.int32))

            def grow(k=k, k_prev=k_prev, states=(c_w, h_w, c_a, h_a)):
                extra = k - k_prev
                return tuple(tf.concat([x, tf.zeros(tf.concat([[extra], tf.shape(x)[1:]], 0),
                                                    dtype)], 0) for x in states)

            c_w, h_w, c_a, h_a = tf.cond(
                k > k_prev, grow, lambda states=(c_w, h_w, c_a, h_a): states)
            c_w.set_shape([None, c.lstm_units])
            h_w.set_shape([None, c.lstm_units])
            c_a.set_shape([None, h, w, c.mlstm_units])
            h_a.set_shape([None, h, w, c.mlstm_units])

            def run_step(k=k, k_prev=k_prev, t=t, c_w=c_w, h_w=h_w, c_a=c_a, h_a=h_a):
                word = embedded[:k, t]
                active = tf.not_equal(words[:k, t], 0)
                c_w_new, h_w_new = self.lang_lstm(word, c_w, h_w)
                lang = l2_normalize(h_w_new)
                c_a_new, h_a_new = self.mlstm.step(
                    static, self.mlstm.dynamic(word, lang, blocks), c_a, h_a, blocks,
                    h_is_zero=(t == 0))  # the zero state: no recurrent product
                return _keep_inactive(active, (c_w_new, h_w_new, c_a_new, h_a_new),
                                      (c_w, h_w, c_a, h_a))

            c_w, h_w, c_a, h_a = tf.cond(
                k > 0, run_step, lambda c_w=c_w, h_w=h_w, c_a=c_a, h_a=h_a: (c_w, h_w, c_a, h_a))
            k_prev = k
        # Expressions without any word keep the zero state.
        h_a = tf.concat([h_a, tf.zeros(tf.concat([[n - k_prev], tf.shape(h_a)[1:]], 0), dtype)],
                        0)
        h_a = tf.gather(h_a, tf.argsort(order))  # back to the callers' order
        h_a.set_shape([None, h, w, c.mlstm_units])
        transformed = output_transform(h_a)
        logits = tf.cast(self.conv2(tf.nn.relu(transformed)), tf.float32)
        upsampled = tf1_resize_bilinear(logits, size, c.upsample)
        return {"response_map": response_map(transformed, size, c.upsample), "logits": logits,
                "upsampled_logits": upsampled, "probabilities": tf.sigmoid(upsampled)}

    def _rmi_head(self, v, s, image_index, words, embedded, return_word_maps):
        """RMI_model.build_graph from the l2-normalised visual feature v.

        Returns (extra outputs, logits [N, h, w, 1] in the compute dtype)."""
        c = self.config
        dtype = v.dtype
        n = tf.shape(words)[0]
        h, w = int(v.shape[1]), int(v.shape[2])
        size = (c.input_size, c.input_size)
        if c.efficient_head:
            blocks = self.mlstm.kernel_blocks(dtype)
            # Step-invariant: once per image, before expressions share it.
            static = self.mlstm.static(v, s, blocks)
            if image_index is not None:
                static = tf.gather(static, image_index)
        else:
            if image_index is not None:
                v = tf.gather(v, image_index)
            s_cells = tf.broadcast_to(s, tf.stack([n, h, w, SPATIAL_DIM]))
        c_w = tf.zeros(tf.stack([n, c.lstm_units]), dtype)
        h_w = c_w
        c_a = tf.zeros(tf.stack([n, h, w, c.mlstm_units]), dtype)
        h_a = c_a
        word_maps, word_logits = [], []
        for t in range(int(words.shape[1])):
            active = tf.not_equal(words[:, t], 0)
            word = embedded[:, t]

            def run_step(word=word, active=active, c_w=c_w, h_w=h_w, c_a=c_a, h_a=h_a, t=t):
                c_w_new, h_w_new = self.lang_lstm(word, c_w, h_w)
                lang = l2_normalize(h_w_new)
                if c.efficient_head:
                    c_a_new, h_a_new = self.mlstm.step(
                        static, self.mlstm.dynamic(word, lang, blocks), c_a, h_a, blocks,
                        h_is_zero=(t == 0))  # the zero state: no recurrent product
                else:
                    c_a_new, h_a_new = self.mlstm.straightforward_step(
                        v, s_cells, word, lang, c_a, h_a)
                return _keep_inactive(active, (c_w_new, h_w_new, c_a_new, h_a_new),
                                      (c_w, h_w, c_a, h_a))

            # As the original's tf.cond per step: a step that is <pad> for the whole
            # batch runs nothing (front padding makes these the common case); an
            # expression with <pad> at this step keeps all its states.
            any_active = tf.reduce_any(active)
            c_w, h_w, c_a, h_a = tf.cond(
                any_active, run_step,
                lambda c_w=c_w, h_w=h_w, c_a=c_a, h_a=h_a: (c_w, h_w, c_a, h_a))
            if return_word_maps:
                transformed = output_transform(h_a)
                word_maps.append(response_map(transformed, size, c.upsample))
                word_logits.append(self.conv2(tf.nn.relu(transformed)))
        transformed = output_transform(h_a)
        logits = self.conv2(tf.nn.relu(transformed))
        outputs = {"response_map": response_map(transformed, size, c.upsample)}
        if return_word_maps:
            outputs["word_response_maps"] = tf.stack(word_maps, 1)
            outputs["word_logits"] = tf.cast(tf.stack(word_logits, 1), tf.float32)
        return outputs, logits

    def _lstm_baseline_head(self, v, s, words, embedded):
        """LSTM_model.build_graph: [v, l2norm(h_T), s] -> conv1 -> ReLU -> conv2."""
        c = self.config
        n = tf.shape(words)[0]
        h, w = int(v.shape[1]), int(v.shape[2])
        c_w = tf.zeros(tf.stack([n, c.lstm_units]), v.dtype)
        h_w = c_w
        for t in range(int(words.shape[1])):
            active = tf.not_equal(words[:, t], 0)

            def run_step(word=embedded[:, t], active=active, c_w=c_w, h_w=h_w):
                return _keep_inactive(active, self.lang_lstm(word, c_w, h_w), (c_w, h_w))

            c_w, h_w = tf.cond(tf.reduce_any(active), run_step,
                               lambda c_w=c_w, h_w=h_w: (c_w, h_w))
        lang = tf.broadcast_to(l2_normalize(h_w)[:, None, None, :],
                               tf.stack([n, h, w, c.lstm_units]))
        cells = tf.broadcast_to(s, tf.stack([n, h, w, SPATIAL_DIM]))
        return self.conv2(tf.nn.relu(self.conv1(tf.concat([v, lang, cells], axis=-1))))

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


def _keep_inactive(active, new_states, old_states):
    """Per expression: the new states where `active` [N] (its word is not
    <pad>), the old ones elsewhere; no select when the whole batch is active."""
    def select():
        out = []
        for new, old in zip(new_states, old_states):
            keep = tf.reshape(active, [-1] + [1] * (len(new.shape) - 1))
            out.append(tf.where(keep, new, old))
        return tuple(out)

    return tf.cond(tf.reduce_all(active), lambda: tuple(new_states), select)


def build_model(model_cfg: ModelConfig) -> ReferringSegmenter:
    """A ReferringSegmenter with every variable created (called once on zeros)."""
    model = ReferringSegmenter(model_cfg)
    size = model_cfg.input_size
    model((tf.zeros((1, size, size, 3)), tf.zeros((1, model_cfg.num_words), tf.int32)))
    return model
