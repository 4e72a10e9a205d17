"""Training: the original release's recipe (main.py `train`, RMI_model/LSTM_model `train_op`).

Recipe (paper + release):
- loss: sigmoid cross-entropy of the h x w logits against the S x S mask
  downsampled with TF1 `resize_bilinear` (align_corners=False, no half-pixel
  centres) on the float mask, SUMMED over the map and averaged over the batch
  (util/loss.py `weighed_logistic_loss` with both multipliers 1), plus
  `weight_decay * sum(||W||^2 / 2)` (tf.nn.l2_loss) over `model.decayed_kernels()`
  (the trained `DW` variables: conv0/conv1/conv2/fc1000; not LSTM kernels, not
  the embedding);
- Adam(0.9, 0.999, 1e-8) with polynomial decay (power 0.9) from
  `learning_rate` to `end_learning_rate`, evaluated at the number of updates
  already applied (TF1 `polynomial_decay(global_step)` before the increment);
- gradients of biases multiplied by `bias_lr_mult` (2) before the update.

Decay length: as the release, a fixed `TrainConfig.lr_decay_steps` (750000,
the release's `lr_decay_step`) whatever the iteration budget; 0 decays over
`TrainConfig.iterations` instead (the synthetic set's default).

Validation during training (`TrainConfig.eval_every`, off by default as in
the original): see `Validator`.

Batch size: `TrainConfig.batch_size` is PER REPLICA; the global batch is
`batch_size * strategy.num_replicas_in_sync`. Each replica scales its summed
per-example loss by 1 / global_batch (`tf.nn.compute_average_loss`) and adds
`reg_loss / num_replicas`; the optimizer sums gradients over replicas, so N
replicas with batch b make exactly the update of one device with batch N*b.

Resume and data order: the input is one deterministic stream of global
batches for a seed (`pipeline.train_dataset`: seeded file and record shuffles,
`repeat()`, deterministic tf.data). Step k always consumes element k of that
stream: a run resumed at step k builds the same stream and `skip(k)`s it, so an
interrupted-and-resumed run sees the same batches as an uninterrupted one.
Skipping still reads and decodes the skipped records (about 1-2 ms each per
core), a one-off cost on resume.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import keras

from tf_rmi import atomic_io
from tf_rmi.training import run_dir as run_dir_lib
# STRATEGIES and PRECISIONS (owned by config) stay importable from here: tf_rmi.train's flags.
from tf_rmi.config import (DATASETS, PRECISIONS, STRATEGIES, ConfigError, DataConfig,
                           ModelConfig, RunConfig, TrainConfig, apply_overrides, apply_partial,
                           dataset_spec, load_config_file)

# The original printed exponential moving averages with this decay (main.py).
DISPLAY_AVERAGE_DECAY = 0.99
# How many samples an image summary shows.
SUMMARY_IMAGES = 3
# Image summaries every this many logging intervals.
IMAGE_SUMMARY_EVERY_LOGS = 10


class NonFiniteLossError(FloatingPointError):
    """The loss became NaN or infinite; training stopped before any snapshot of that step."""

    def __init__(self, step: int, loss: float, cls_loss: float, reg_loss: float, checkpoint):
        self.step = step
        self.checkpoint = checkpoint
        kept = f"the latest checkpoint {checkpoint} is intact" if checkpoint else "no checkpoint was written"
        super().__init__(
            f"Loss is not finite at step {step} (loss={loss}, cls_loss={cls_loss}, "
            f"reg_loss={reg_loss}); training stopped before saving this step, {kept}. "
            "Lower the learning rate, check the input records, or resume from the checkpoint.")


class ConfigMismatchError(ValueError):
    """A run directory's saved model config differs from the one asked for."""


# ----------------------------------------------------------------------------- loss


def downsample_mask(mask: tf.Tensor, size: Sequence[int]) -> tf.Tensor:
    """[N,S,S,1] float mask -> [N,h,w,1] with TF1 `resize_bilinear` semantics.

    align_corners=False and no half-pixel centres: output pixel i reads input
    position i * S / h (for 320 -> 40 exactly pixel 8i, so a 0/1 mask stays
    0/1; other ratios give soft targets, as the release's `self.target`).
    """
    mask = tf.convert_to_tensor(mask, tf.float32)
    return tf.raw_ops.ResizeBilinear(images=mask, size=tf.constant(list(size), tf.int32),
                                     align_corners=False, half_pixel_centers=False)


def per_example_cls_loss(logits: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Sigmoid cross-entropy summed over the map: logits [N,h,w,1], mask [N,S,S,1] -> [N].

    The target is `downsample_mask(mask, (h, w))`; the sum over [h, w, 1] is
    the release's `reduce_sum(..., [1, 2, 3])`.
    """
    logits = tf.cast(logits, tf.float32)
    target = downsample_mask(mask, logits.shape[1:3])
    losses = tf.nn.sigmoid_cross_entropy_with_logits(labels=target, logits=logits)
    return tf.reduce_sum(losses, axis=[1, 2, 3])


def regularization_loss(kernels: Iterable, weight_decay: float) -> tf.Tensor:
    """`weight_decay * sum(||W||^2 / 2)` over `kernels` (TF `l2_loss`), a float32 scalar."""
    terms = [tf.nn.l2_loss(tf.cast(k, tf.float32)) for k in kernels]
    if not terms:
        return tf.constant(0.0, tf.float32)
    return tf.constant(weight_decay, tf.float32) * tf.add_n(terms)


def loss_fn(logits: tf.Tensor, mask: tf.Tensor, decayed_kernels: Iterable = (),
            weight_decay: float = 5e-4) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The release's cost on one batch: returns (total, cls_loss, reg_loss) scalars.

    logits [N,h,w,1], mask [N,S,S,1] (0/1 float); cls_loss is the batch mean
    of `per_example_cls_loss`; reg_loss is `regularization_loss` of
    `decayed_kernels` (pass `model.decayed_kernels()`).
    """
    cls_loss = tf.reduce_mean(per_example_cls_loss(logits, mask))
    reg_loss = regularization_loss(decayed_kernels, weight_decay)
    return cls_loss + reg_loss, cls_loss, reg_loss


def accuracy_counts(logits: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Counts behind the release's `compute_accuracy`, float32 [4]:
    (correct positives, positives, correct negatives, negatives).

    As the release: on the h x w map, a cell is positive where the downsampled
    target is non-zero, and predicted positive where the logit is >= 0.
    """
    logits = tf.cast(logits, tf.float32)
    target = downsample_mask(mask, logits.shape[1:3])
    is_pos = tf.not_equal(target, 0.0)
    correct = tf.equal(logits >= 0.0, is_pos)
    f = lambda x: tf.reduce_sum(tf.cast(x, tf.float32))
    return tf.stack([f(correct & is_pos), f(is_pos), f(correct & ~is_pos), f(~is_pos)])


def pixel_accuracy(counts) -> Tuple[float, float, float]:
    """(all, pos, neg) from `accuracy_counts`, with the release's `(num_pos + 1)`
    denominator for positives (it avoids 0/0 on empty masks)."""
    correct_pos, pos, correct_neg, neg = [float(c) for c in np.asarray(counts)]
    total = pos + neg
    return ((correct_pos + correct_neg) / total if total else float("nan"),
            correct_pos / (pos + 1.0),
            correct_neg / neg if neg else float("nan"))


# ------------------------------------------------------------------ optimizer


def learning_rate_schedule(train_cfg: TrainConfig) -> keras.optimizers.schedules.PolynomialDecay:
    """TF1 `polynomial_decay(lr, step, decay_steps, end_lr, power=0.9, cycle=False)`:
    `(lr - end) * (1 - min(step, D) / D) ** power + end`, with D =
    `lr_decay_steps` (the original's 750000) or, when 0, the iteration budget."""
    decay_steps = train_cfg.lr_decay_steps or train_cfg.iterations
    return keras.optimizers.schedules.PolynomialDecay(
        initial_learning_rate=train_cfg.learning_rate, decay_steps=max(1, decay_steps),
        end_learning_rate=train_cfg.end_learning_rate, power=train_cfg.lr_power, cycle=False)


@keras.saving.register_keras_serializable(package="tf_rmi")
class TrunkScaledAdam(keras.optimizers.Adam):
    """Adam whose small-trunk variables (names under `small_trunk/`) step at
    `trunk_learning_rate_mult` times the learning rate; every other variable,
    and the slots, exactly as Adam. Scaling the gradient cannot do this: Adam's
    step does not depend on the gradient's scale."""

    def __init__(self, trunk_learning_rate_mult: float = 1.0, **kwargs):
        super().__init__(**kwargs)
        self.trunk_learning_rate_mult = float(trunk_learning_rate_mult)

    def update_step(self, gradient, variable, learning_rate):
        if "small_trunk/" in variable.name:
            learning_rate = learning_rate * self.trunk_learning_rate_mult
        return super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return dict(super().get_config(), trunk_learning_rate_mult=self.trunk_learning_rate_mult)


def make_optimizer(train_cfg: TrainConfig, precision: str = "float32") -> keras.optimizers.Optimizer:
    """Adam with the decayed learning rate (the small trunk's variables at
    `trunk_learning_rate_mult` x it when that is not 1); wrapped in a
    LossScaleOptimizer for float16."""
    adam = dict(learning_rate=learning_rate_schedule(train_cfg), beta_1=train_cfg.adam_beta1,
                beta_2=train_cfg.adam_beta2, epsilon=train_cfg.adam_epsilon)
    if train_cfg.trunk_learning_rate_mult != 1.0:
        optimizer = TrunkScaledAdam(train_cfg.trunk_learning_rate_mult, **adam)
    else:
        optimizer = keras.optimizers.Adam(**adam)
    if precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def current_learning_rate(optimizer) -> float:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    return float(inner.learning_rate.numpy() if hasattr(inner.learning_rate, "numpy")
                 else inner.learning_rate)


def scale_bias_gradients(grads: List, variables: List, bias_variables: Iterable,
                         multiplier: float) -> List:
    """Multiplies the gradients of `bias_variables` by `multiplier` (the release's
    `var_lr_mult`: 2.0 for every variable named `biases`)."""
    bias_ids = {id(v) for v in bias_variables}
    return [g * tf.cast(multiplier, g.dtype) if (g is not None and id(v) in bias_ids) else g
            for g, v in zip(grads, variables)]


# -------------------------------------------------------------- training step


def replica_losses(logits: tf.Tensor, mask: tf.Tensor, decayed_kernels: Iterable,
                   weight_decay: float, global_batch_size: int,
                   num_replicas: int = 1) -> Tuple[tf.Tensor, tf.Tensor]:
    """One replica's share of the release's cost: (cls_loss, reg_loss) float32 scalars.

    logits [n,h,w,1] float32 and mask [n,S,S,1] hold this replica's n examples.
    cls_loss: `per_example_cls_loss` summed over them and divided by
    `global_batch_size` (`tf.nn.compute_average_loss`); reg_loss:
    `regularization_loss(decayed_kernels, weight_decay) / num_replicas`. Summed
    over the replicas (the optimizer sums their gradients) the two give
    `loss_fn` of the global batch: the release's batch-mean cost plus weight
    decay, counted once.
    """
    cls_loss = tf.nn.compute_average_loss(per_example_cls_loss(logits, mask),
                                          global_batch_size=global_batch_size)
    # Added once in total: each replica carries 1/num_replicas of it.
    reg_loss = regularization_loss(decayed_kernels, weight_decay) / num_replicas
    return cls_loss, reg_loss


def apply_update(optimizer, grads: List, variables: List, bias_variables: Iterable,
                 bias_lr_mult: float) -> None:
    """The release's update: bias gradients times `bias_lr_mult` (its
    `var_lr_mult` of 2 on `biases`), then one optimizer step. `grads` as
    `tape.gradient(scaled loss, variables)`: a LossScaleOptimizer unscales them."""
    grads = scale_bias_gradients(grads, variables, bias_variables, bias_lr_mult)
    optimizer.apply_gradients(zip(grads, variables))


class TrainStep(NamedTuple):
    """What `make_train_step` builds.

    step(features, mask, stop=None) -> (cls_loss, reg_loss, counts, stop_any):
      one update of the whole (global) batch under the strategy (a
      tf.function). features: {"images": float32 [N,S,S,3] Caffe-preprocessed,
      "words": int32 [N,T]} and mask float32 [N,S,S,1], as `pipeline.train_dataset`
      gives them (distributed or not); stop: int32 [] (a preemption notice,
      default 0). Returns the replica-summed cls_loss and reg_loss (float32 [],
      their sum is `loss_fn`'s total), `accuracy_counts` float32 [4] and
      stop_any bool [] (any replica / worker asked to stop).
    forward_backward(images, words, mask) -> (cls_loss, reg_loss, grads, counts):
      one replica's forward and backward pass, no update (a tf.function,
      XLA-compiled with `jit_compile`): its `replica_losses`, the gradients of
      the (loss-scaled, under mixed_float16) total wrt `variables`, and its
      `accuracy_counts`.
    variables: the variables updated (the model's trainable ones when built).
    """

    step: Callable
    forward_backward: Callable
    variables: List


def make_train_step(model, optimizer, train_cfg: TrainConfig,
                    strategy: Optional[tf.distribute.Strategy] = None,
                    global_batch_size: Optional[int] = None,
                    step_var: Optional[tf.Variable] = None,
                    trunk_features: Optional[tf.Tensor] = None) -> TrainStep:
    """The training step of `train` (the release's `train_op`), as a `TrainStep`.

    Loss: `replica_losses` (mean per-example sigmoid cross-entropy over the
    global batch, plus weight decay on `model.decayed_kernels()`), scaled
    by a LossScaleOptimizer (mixed_float16) before the gradients; update:
    `apply_update` (bias gradients times `train_cfg.bias_lr_mult`, then
    `optimizer`), per replica through `strategy.run`, losses and counts summed
    over replicas. Only `model.trainable_variables` as they are now train: a
    frozen trunk (`build_training_state` freezes a pretrained small trunk; the
    ResNet trunk always is) gets no gradient and no decay.

    strategy: default `tf.distribute.get_strategy()` (one device when no
    scope is entered). global_batch_size: the divisor of the summed
    per-example losses; default, the batch's own static size times the
    replicas (`train` passes `batch_size x replicas`). step_var: an int64
    variable incremented once per step (the checkpointed step), or None.
    `train_cfg.jit_compile` XLA-compiles `forward_backward`.

    trunk_features: a frozen trunk's outputs, [num_images, h, w, C]
    (`trunk_cache.TrunkFeatureCache.features`); the features of each batch
    then carry `"trunk_row"` [N] (rows of it) instead of `"images"`, and
    `forward_backward`'s first argument is those rows: the step runs the
    visual projection and the head only.
    """
    if strategy is None:
        strategy = tf.distribute.get_strategy()
    num_replicas = strategy.num_replicas_in_sync
    variables = list(model.trainable_variables)
    bias_variables = list(model.bias_variables())
    decayed_kernels = list(model.decayed_kernels())
    loss_scaling = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

    @tf.function(jit_compile=bool(train_cfg.jit_compile))
    def forward_backward(images, words, mask):
        batch = (global_batch_size if global_batch_size is not None
                 else int(images.shape[0]) * num_replicas)
        with tf.GradientTape() as tape:
            if trunk_features is None:
                outputs = model((images, words), training=True)
            else:  # `images` holds rows of the cached trunk outputs
                cached = tf.cast(tf.gather(trunk_features, images), model.compute_dtype)
                outputs = model.segment(model.visual_proj(cached), words)
            logits = tf.cast(outputs["logits"], tf.float32)
            cls_loss, reg_loss = replica_losses(logits, mask, decayed_kernels,
                                                train_cfg.weight_decay, batch, num_replicas)
            loss = cls_loss + reg_loss
            scaled = optimizer.scale_loss(loss) if loss_scaling else loss
        grads = tape.gradient(scaled, variables)
        return cls_loss, reg_loss, grads, accuracy_counts(logits, mask)

    def replica_step(features, mask, stop):
        inputs = features["images"] if trunk_features is None else features["trunk_row"]
        cls_loss, reg_loss, grads, counts = forward_backward(inputs, features["words"], mask)
        apply_update(optimizer, grads, variables, bias_variables, train_cfg.bias_lr_mult)
        return cls_loss, reg_loss, counts, tf.identity(stop)

    @tf.function
    def step(features, mask, stop=None):
        if stop is None:
            stop = tf.constant(0, tf.int32)
        per_replica = strategy.run(replica_step, args=(features, mask, stop))
        cls_loss, reg_loss, counts, stops = [
            strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for v in per_replica]
        if step_var is not None:
            step_var.assign_add(1)
        # Any worker's stop request reaches all of them in the same step.
        return cls_loss, reg_loss, counts, stops > 0

    return TrainStep(step, forward_backward, variables)


# ------------------------------------------------------------------- config


def default_train_split(dataset: str) -> str:
    """The dataset's default training split (`config.DatasetSpec.train_split`:
    the release trains ReferIt on trainval and the COCO sets on train);
    "train" for records of a dataset outside the registry."""
    return DATASETS[dataset].train_split if dataset in DATASETS else "train"


def config_from_flags(dataset: str, tfrecord_dir: str, model: str = "RMI", weights: str = "deeplab",
                      trunk: str = "resnet101", small_trunk_width: int = 32, input_size: int = 320,
                      num_words: int = 20, vocab_file: Optional[str] = None,
                      vocab_size: Optional[int] = None, iterations: Optional[int] = None,
                      snapshot_every: Optional[int] = None, batch_size: int = 1,
                      learning_rate: float = 2.5e-4, pretrained: Optional[str] = None,
                      keep_checkpoints: Optional[int] = None, strategy: str = "default",
                      precision: str = "float32", jit_compile: bool = False, seed: int = 0,
                      visual_dim: int = 1000, embed_dim: int = 1000, lstm_units: int = 1000,
                      mlstm_units: int = 500, log_every: int = 20,
                      lr_decay_steps: Optional[int] = None, eval_every: int = 0,
                      eval_split: str = "val", eval_max_expressions: int = 0,
                      small_trunk_input_scale: float = 1.0,
                      small_trunk_norm: str = "none", small_trunk_residual: bool = False,
                      small_trunk_aligned: bool = False,
                      small_trunk_standardize: bool = False,
                      small_trunk_context: bool = False,
                      trunk_learning_rate_mult: float = 1.0,
                      deterministic: bool = False, bucket_by_length: bool = False,
                      cache_trunk_features: bool = False, check: bool = True) -> RunConfig:
    """A RunConfig from plain values (what `train.py`'s flags hold).

    `iterations`, `snapshot_every`, `lr_decay_steps` and `keep_checkpoints`
    default to the dataset's (`config.dataset_spec(dataset)`: the paper's
    budget, every snapshot kept for the paper's datasets); an unknown dataset
    is refused, naming the known ones. `vocab_size` None (0) means "the size of
    the dataset's vocabulary file", resolved by `train`.

    `check`: `RunConfig.validate()` the result, a bad value named by its flag
    (`--model must be RMI or LSTM, got 'GRU'`); `config_from_command_line`
    checks later, once the config file and overrides are applied.
    """
    spec = dataset_spec(dataset)
    if iterations is None:
        iterations = spec.iterations
    if snapshot_every is None:
        snapshot_every = min(spec.snapshot_every, iterations)
    if lr_decay_steps is None:
        lr_decay_steps = spec.lr_decay_steps
    if keep_checkpoints is None:
        keep_checkpoints = spec.keep_checkpoints
    data = DataConfig(dataset=dataset, tfrecord_dir=tfrecord_dir, vocab_file=vocab_file)
    model_cfg = ModelConfig(model=model, weights=weights, trunk=trunk,
                            small_trunk_width=small_trunk_width,
                            small_trunk_input_scale=float(small_trunk_input_scale),
                            small_trunk_norm=small_trunk_norm,
                            small_trunk_residual=bool(small_trunk_residual),
                            small_trunk_aligned=bool(small_trunk_aligned),
                            small_trunk_standardize=bool(small_trunk_standardize),
                            small_trunk_context=bool(small_trunk_context),
                            vocab_size=int(vocab_size or 0),
                            input_size=input_size, num_words=num_words, visual_dim=visual_dim,
                            embed_dim=embed_dim, lstm_units=lstm_units, mlstm_units=mlstm_units)
    train = TrainConfig(iterations=iterations, snapshot_every=snapshot_every, batch_size=batch_size,
                        learning_rate=learning_rate, pretrained=pretrained or None,
                        keep_checkpoints=keep_checkpoints, seed=seed, strategy=strategy,
                        precision=precision, jit_compile=jit_compile, log_every=log_every,
                        deterministic=bool(deterministic),
                        bucket_by_length=bool(bucket_by_length),
                        cache_trunk_features=bool(cache_trunk_features),
                        lr_decay_steps=int(lr_decay_steps), eval_every=int(eval_every or 0),
                        eval_split=eval_split, eval_max_expressions=int(eval_max_expressions or 0),
                        trunk_learning_rate_mult=float(trunk_learning_rate_mult))
    config = RunConfig(data=data, model=model_cfg, train=train)
    if check:
        try:
            config.validate()
        except ConfigError as err:
            # Every field here comes from the flag of its name.
            raise ValueError(f"--{err.field.split('.')[-1]} {err.problem}") from None
    return config


def config_from_command_line(flag_values: Dict[str, object], config_file: Optional[str] = None,
                             overrides: Sequence[str] = ()) -> RunConfig:
    """`tf_rmi.train`'s config: `config_from_flags(**flag_values)` (the dataset's
    defaults for unset budget flags), then the partial JSON `config_file`
    (`config.load_config_file`), then each `section.field=value` of `overrides`
    (`config.apply_overrides`), then `RunConfig.validate()`. The file and the
    overrides set exactly the fields they name: a dataset they name brings no
    defaults of its own (pass --dataset for those)."""
    config = config_from_flags(**flag_values, check=False)
    if config_file:
        config = apply_partial(config, load_config_file(config_file))
    return apply_overrides(config, overrides).validate()


def resolve_vocab_size(run_config: RunConfig) -> RunConfig:
    """Fills `model.vocab_size` from the vocabulary when it is 0, and checks it otherwise.

    The vocabulary is `data.vocab_file` or the manifest's `vocab_file`. A set
    vocab_size with no readable vocabulary is trusted as given.
    """
    from tf_rmi.data import pipeline
    from tf_rmi.data.text import Vocabulary

    try:
        vocab_file = pipeline.resolve_vocab_file(run_config.data)
    except (FileNotFoundError, ValueError) as err:
        if run_config.model.vocab_size:
            return run_config
        raise ValueError(f"Cannot resolve the vocabulary size: {err}") from None
    if not os.path.exists(vocab_file):
        if run_config.model.vocab_size:
            return run_config
        raise FileNotFoundError(
            f"Vocabulary file {vocab_file} not found: pass --vocab_file or re-run `make preprocess`")
    size = len(Vocabulary.from_file(vocab_file))
    if not run_config.model.vocab_size:
        return dataclasses.replace(run_config, model=dataclasses.replace(run_config.model, vocab_size=size))
    if run_config.model.vocab_size != size:
        raise ValueError(
            f"model.vocab_size={run_config.model.vocab_size} but the vocabulary {vocab_file} "
            f"has {size} words: leave vocab_size unset (0) to take it from the vocabulary")
    return run_config


def model_config_differences(saved: ModelConfig, wanted: ModelConfig) -> List[str]:
    """'field: saved X, asked Y' for each differing ModelConfig field."""
    a, b = dataclasses.asdict(saved), dataclasses.asdict(wanted)
    return [f"{k}: saved {a[k]!r}, asked {b[k]!r}" for k in sorted(a) if a[k] != b.get(k)]


def make_strategy(name: str) -> tf.distribute.Strategy:
    """'default' -> the current (no-op) strategy, 'mirrored' -> all local devices,
    'multi_worker' -> MultiWorkerMirroredStrategy (reads TF_CONFIG)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy {name!r}: use one of {STRATEGIES}")


def worker_role(strategy_name: str) -> Tuple[bool, int]:
    """(is_chief, task_id) of this process, from TF_CONFIG for 'multi_worker'.

    The chief is task `chief` 0 when the cluster has a `chief` job, else
    `worker` 0 (MultiWorkerMirroredStrategy's rule); without TF_CONFIG, and
    for the other strategies, the process is the chief. Only the chief writes
    the run directory (config.json, vocab.txt, checkpoints/, logs/, best/).
    """
    if strategy_name != "multi_worker":
        return True, 0
    resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    jobs = resolver.cluster_spec().as_dict()
    task_type, task_id = resolver.task_type, int(resolver.task_id or 0)
    if not jobs or task_type is None:
        return True, 0
    if "chief" in jobs:
        return task_type == "chief", task_id
    return task_type == "worker" and task_id == 0, task_id


class _StopSignal:
    """Records SIGTERM (a preemption notice) while installed; the training loop
    checks it between steps, saves a checkpoint of the step reached and returns.

    Installed only from the main thread (Python delivers signals there); the
    previous handler is put back on exit.
    """

    def __init__(self, signals=(signal.SIGTERM,)):
        self.signals, self.received, self._previous = signals, None, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.received = signum

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        return False


def remove_unfinished_checkpoints(directory: str) -> List[str]:
    """Deletes what a save killed part-way left in `directory`; returns the paths removed.

    `tf.train.CheckpointManager.save` writes `<prefix>-N_temp/`, merges it into
    `<prefix>-N.index` / `.data-*`, and only then rewrites the `checkpoint`
    state file (atomically), so a killed save is never the latest checkpoint.
    Its leftovers are the `_temp` directories and the files of checkpoints
    numbered above the latest one the state file lists.
    """
    if not os.path.isdir(directory):
        return []
    latest = tf.train.latest_checkpoint(directory)
    latest_number = int(latest.rsplit("-", 1)[1]) if latest else -1
    pattern = re.compile(re.escape(run_dir_lib.CHECKPOINT_PREFIX) + r"-(\d+)(_temp|\.index|\.data-.*)$")
    removed = []
    for name in sorted(os.listdir(directory)):
        match = pattern.match(name)
        if match and (match.group(2) == "_temp" or int(match.group(1)) > latest_number):
            path = os.path.join(directory, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)
            removed.append(path)
    return removed


# ------------------------------------------------------------------ summaries


def deprocess_images(images: tf.Tensor) -> tf.Tensor:
    """Caffe-preprocessed BGR [N,S,S,3] -> RGB in [0, 1] for display."""
    from tf_rmi.data.image_ops import CAFFE_MEAN_BGR

    bgr = tf.cast(images, tf.float32) + tf.constant(CAFFE_MEAN_BGR, tf.float32)
    return tf.clip_by_value(bgr[..., ::-1] / 255.0, 0.0, 1.0)


def write_scalar(tag: str, value: float, step: int) -> None:
    """`tf.summary.scalar` (the tensorboard package's scalars plugin) to the default writer."""
    tf.summary.scalar(tag, float(value), step=step)


def write_images(tag: str, images: tf.Tensor, step: int) -> None:
    """`tf.summary.image` of [N,H,W,C] floats in [0, 1] (C = 1 or 3), at most
    `SUMMARY_IMAGES` of them, to the default writer."""
    tf.summary.image(tag, tf.clip_by_value(tf.cast(images, tf.float32), 0.0, 1.0), step=step,
                     max_outputs=SUMMARY_IMAGES)


class _RunningAverages:
    """Bias-corrected exponential moving averages (the release printed EMAs, decay 0.99)."""

    def __init__(self, decay: float = DISPLAY_AVERAGE_DECAY):
        self.decay, self.values, self.count = decay, {}, 0

    def update(self, values: Dict[str, float]) -> Dict[str, float]:
        self.count += 1
        for k, v in values.items():
            if math.isfinite(v):
                self.values[k] = self.decay * self.values.get(k, 0.0) + (1 - self.decay) * v
        correction = 1 - self.decay ** self.count
        return {k: v / correction for k, v in self.values.items()}


class TrainingLogger:
    """TensorBoard and the progress bar of one `train` call.

    Scalars (loss, cls_loss, reg_loss, learning_rate, accuracy/all|positive|
    negative) are written as means over each `log_every` window and at the
    last step; input / ground-truth / probability images every
    `IMAGE_SUMMARY_EVERY_LOGS` windows and at the last step. Only the chief
    writes `<run_dir>/logs`; other workers log to a no-op writer. The bar
    counts this call's steps (its ETA stays right after a resume) and shows
    the absolute step, the last losses and the release's smoothed ones.
    """

    BAR_METRICS = ("step", "loss", "cls_loss", "avg_cls_loss", "acc_pos", "acc_neg", "lr",
                   "val_iou")

    def __init__(self, run_dir: str, log_every: int, is_chief: bool, start_step: int,
                 end_step: int, progress: bool = True):
        self.log_every, self.is_chief = log_every, is_chief
        self.start_step, self.end_step = start_step, end_step
        if is_chief:
            log_dir = os.path.join(run_dir, run_dir_lib.LOG_SUBDIR)
            os.makedirs(log_dir, exist_ok=True)
            self.writer = tf.summary.create_file_writer(log_dir)
        else:
            self.writer = tf.summary.create_noop_writer()
        self.bar = (keras.utils.Progbar(end_step - start_step,
                                        stateful_metrics=list(self.BAR_METRICS))
                    if progress and end_step > start_step else None)
        self._averages = _RunningAverages()
        self._window: Dict[str, List[float]] = {}
        self._smoothed: Dict[str, float] = {}
        self._last: Dict[str, float] = {}

    def log_step(self, step: int, values: Dict[str, float],
                 write_images: Optional[Callable[[int], None]] = None) -> None:
        """Records step `step`'s `values` (the scalars above); writes the
        window's means when due, and calls `write_images(step)` (inside the
        writer) when images are due."""
        for k, v in values.items():
            self._window.setdefault(k, []).append(v)
        self._last = values
        self._smoothed = self._averages.update({"cls_loss": values["cls_loss"],
                                                "acc_pos": values["accuracy/positive"],
                                                "acc_neg": values["accuracy/negative"]})
        if step % self.log_every == 0 or step == self.end_step:
            with self.writer.as_default():
                for k, vs in self._window.items():
                    finite = [v for v in vs if math.isfinite(v)]
                    write_scalar(k, float(np.mean(finite)) if finite else float("nan"), step)
                if write_images is not None and self.is_chief and (
                        step % (self.log_every * IMAGE_SUMMARY_EVERY_LOGS) == 0
                        or step == self.end_step):
                    write_images(step)
            self._window = {}

    def show_progress(self, step: int, val_iou: Optional[float] = None) -> None:
        """Moves the bar to `step` with the last logged step's values."""
        if self.bar is None:
            return
        last, smoothed = self._last, self._smoothed
        self.bar.update(step - self.start_step, values=[
            ("step", step), ("loss", last["loss"]), ("cls_loss", last["cls_loss"]),
            ("avg_cls_loss", smoothed.get("cls_loss", last["cls_loss"])),
            ("acc_pos", smoothed.get("acc_pos", 0.0)), ("acc_neg", smoothed.get("acc_neg", 0.0)),
            ("lr", last["learning_rate"])] + ([("val_iou", val_iou)] if val_iou is not None
                                              else []))

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class CheckpointWriter:
    """Saves `checkpoint` as `<run_dir>/checkpoints/ckpt-<step>`, keeping the
    last `keep`. Under 'multi_worker' every worker must save
    (MultiWorkerMirroredStrategy's collective ops); a non-chief saves into a
    temporary directory, deleted after each save and by `close`. An
    unwritable or full location is an OSError naming it and the fix."""

    def __init__(self, checkpoint: tf.train.Checkpoint, run_dir: str, keep: int,
                 is_chief: bool = True, task_id: int = 0):
        self.worker_tmp = None
        if is_chief:
            self.directory = run_dir_lib.checkpoint_dir(run_dir)
        else:
            self.worker_tmp = tempfile.mkdtemp(prefix=f"tf_rmi_worker{task_id}_")
            self.directory = os.path.join(self.worker_tmp, run_dir_lib.CHECKPOINT_SUBDIR)
        self.manager = tf.train.CheckpointManager(checkpoint, self.directory, max_to_keep=keep,
                                                  checkpoint_name=run_dir_lib.CHECKPOINT_PREFIX)

    def save(self, number: int) -> None:
        try:
            self.manager.save(checkpoint_number=number)
        except (OSError, tf.errors.OpError) as err:
            raise OSError(atomic_io.unwritable_message(self.directory, err)) from None
        if self.worker_tmp is not None:
            shutil.rmtree(self.worker_tmp, ignore_errors=True)

    def close(self) -> None:
        if self.worker_tmp is not None:
            shutil.rmtree(self.worker_tmp, ignore_errors=True)


def distributed_input(dataset: tf.data.Dataset, strategy, start_step: int,
                      strategy_name: str):
    """The training stream from step `start_step` on, distributed: step k
    consumes element k of the seeded stream (see the module docstring), also
    after a resume. Under 'multi_worker' every worker builds the same
    global-batch stream and keeps its share of each batch, so the global batch
    of step k is the same as on one device."""
    dataset = dataset.skip(start_step)
    if strategy_name == "multi_worker":
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = \
            tf.data.experimental.AutoShardPolicy.DATA
        dataset = dataset.with_options(options)
    return strategy.experimental_distribute_dataset(dataset)


# ----------------------------------------------------------------------- train


def _build_model(model_cfg: ModelConfig):
    from tf_rmi.models.segmenter import build_model

    return build_model(model_cfg)


def build_training_state(run_config: RunConfig):
    """(model, optimizer, step variable, tf.train.Checkpoint) as `train` saves them.

    The optimizer's slots are created up front (`optimizer.build`) so a restore
    fills them directly. Call inside the strategy's scope; the global dtype
    policy must already be `train.precision`.
    """
    model = _build_model(run_config.model)
    if run_config.train.pretrained and run_config.model.trunk == "small":
        # A pretrained small trunk is frozen, as the original's DeepLab trunk:
        # no gradients, no optimizer slots, no weight decay (decayed_kernels).
        model.trunk.trainable = False
    optimizer = make_optimizer(run_config.train, run_config.train.precision)
    optimizer.build(list(model.trainable_variables))
    step_var = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step_var)
    return model, optimizer, step_var, checkpoint


def _load_pretrained(model, run_config: RunConfig):
    """Initialises the frozen trunk (and fc1000 for resnet weights) from
    TrainConfig.pretrained; for trunk='small', a `trunk_pretraining` directory."""
    from tf_rmi.models.pretrained import load_pretrained

    path = run_config.train.pretrained
    if run_config.model.trunk == "small":
        from tf_rmi.training.trunk_pretraining import load_small_trunk

        return load_small_trunk(model.trunk, path, run_config.model)
    if not os.path.exists(path) and not os.path.exists(path + ".index"):
        raise FileNotFoundError(
            f"Pretrained weights {path} not found (a .h5, a .npy or a TF checkpoint prefix); "
            "see checkpoints/README for where each file goes")
    fc1000 = None
    if run_config.model.weights == "resnet":
        # With ImageNet weights the visual projection IS the classifier fc1000.
        fc1000 = (model.visual_proj.kernel, model.visual_proj.bias)
    return load_pretrained(model.trunk, path, run_config.model.weights, fc1000=fc1000)


def _prepare_run_dir(run_config: RunConfig, run_dir: str, write: bool = True) -> Optional[str]:
    """Checks a resumed run's model config and, when `write` (the chief), removes
    what a killed save left (`remove_unfinished_checkpoints`) and writes
    config.json and vocab.txt; returns the latest checkpoint.

    An unwritable or full location raises OSError naming the path and the fix."""
    ckpt_dir = run_dir_lib.checkpoint_dir(run_dir)
    if write:
        atomic_io.ensure_writable_dir(run_dir)
        try:
            os.makedirs(ckpt_dir, exist_ok=True)
            remove_unfinished_checkpoints(ckpt_dir)
        except OSError as err:
            raise OSError(atomic_io.unwritable_message(ckpt_dir, err)) from None
    latest = tf.train.latest_checkpoint(ckpt_dir)
    if latest is not None:
        try:
            saved = RunConfig.load(run_dir)
        except FileNotFoundError:
            raise ConfigMismatchError(
                f"{run_dir} holds checkpoints but no config.json: cannot check that they fit; "
                "use a new run directory") from None
        differences = model_config_differences(saved.model, run_config.model)
        if differences:
            raise ConfigMismatchError(
                f"Cannot resume {run_dir}: its saved model config differs from the one asked for "
                f"({'; '.join(differences)}). Use a new --run_dir, or the saved settings.")
    if write:
        try:
            _copy_vocabulary(run_config, run_dir, resuming=latest is not None)
            run_config.save(run_dir)
        except OSError as err:
            raise OSError(atomic_io.unwritable_message(run_dir, err)) from None
    return latest


VALIDATION_FILENAME = "validation.jsonl"  # one JSON line per validation, in the run dir
BEST_FILENAME = "best.json"
BEST_SUBDIR = "best"


class Validator:
    """Scores the validation split during training and keeps the best step.

    Every `train.eval_every` steps `score(step)` runs `eval_lib.evaluate` (the
    original's scoring: threshold, inverse transform, overall IoU, P@X) on
    `train.eval_split`, appends `{"step", "overall_iou", "mean_iou",
    "precision@0.5", "expressions"}` to `<run_dir>/validation.jsonl`, writes
    `val/overall_iou`, `val/mean_iou` and `val/precision@0.5` to TensorBoard
    and, when the overall IoU beats the best so far, saves the model's weights
    to `<run_dir>/best/ckpt-<step>` and records it in `<run_dir>/best.json`.
    A resumed run keeps its history and its best.
    """

    def __init__(self, model, run_config: RunConfig, run_dir: str, checkpoint):
        from tf_rmi.config import EvalConfig

        self.model, self.run_config, self.run_dir = model, run_config, run_dir
        tcfg = run_config.train
        self.every = tcfg.eval_every
        self.eval_config = EvalConfig(split=tcfg.eval_split,
                                      max_expressions=tcfg.eval_max_expressions)
        self.history_path = os.path.join(run_dir, VALIDATION_FILENAME)
        self.best_path = os.path.join(run_dir, BEST_FILENAME)
        self.best = _read_json(self.best_path)
        self.manager = tf.train.CheckpointManager(
            checkpoint, os.path.join(run_dir, BEST_SUBDIR), max_to_keep=1,
            checkpoint_name=run_dir_lib.CHECKPOINT_PREFIX)
        if self.every:
            # Fail before training when the split is missing, not at the first validation.
            from tf_rmi.data import shards
            shards.shard_paths(run_config.data.tfrecord_dir, run_config.data.dataset,
                               tcfg.eval_split)

    def due(self, step: int, end_step: int) -> bool:
        return bool(self.every) and (step % self.every == 0 or step == end_step)

    def score(self, step: int) -> dict:
        from tf_rmi.evaluation import eval_lib

        results = eval_lib.evaluate(self.model, self.run_config, self.eval_config,
                                    progress=False)
        raw = results["raw"]
        entry = {"step": int(step), "split": self.eval_config.split,
                 "overall_iou": raw["overall_iou"], "mean_iou": raw["mean_iou"],
                 "precision@0.5": raw["precision"]["0.5"],
                 "expressions": results["expressions"]}
        for key in ("overall_iou", "mean_iou", "precision@0.5"):
            write_scalar(f"val/{key}", entry[key], step)
        with open(self.history_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(entry, sort_keys=True) + "\n")
        if self.best is None or entry["overall_iou"] > self.best["overall_iou"]:
            prefix = self.manager.save(checkpoint_number=step)
            self.best = dict(entry, checkpoint=os.path.relpath(prefix, self.run_dir))
            atomic_io.write_json(self.best_path, self.best)
        return entry


def read_validation_history(run_dir: str) -> List[dict]:
    """The entries `Validator.score` appended to `<run_dir>/validation.jsonl`
    (later entries for the same step, after a resume, replace earlier ones)."""
    path = os.path.join(run_dir, VALIDATION_FILENAME)
    if not os.path.exists(path):
        return []
    by_step = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                entry = json.loads(line)
                by_step[entry["step"]] = entry
    return [by_step[k] for k in sorted(by_step)]


def _read_json(path: str) -> Optional[dict]:
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _copy_vocabulary(run_config: RunConfig, run_dir: str, resuming: bool) -> None:
    """Copies the run's vocabulary to `<run_dir>/vocab.txt`, so that the run
    directory predicts and exports from anywhere (`run_dir.run_vocab_file`).
    A resumed run must still read the vocabulary its checkpoints embed."""
    from tf_rmi.data import pipeline

    try:
        source = pipeline.resolve_vocab_file(run_config.data)
    except (FileNotFoundError, ValueError):
        return  # a vocab_size given with no vocabulary file (resolve_vocab_size trusts it)
    if not os.path.isfile(source):
        return
    target = os.path.join(run_dir, run_dir_lib.VOCAB_FILENAME)
    os.makedirs(run_dir, exist_ok=True)
    if os.path.exists(target):
        if os.path.samefile(source, target):
            return
        with open(source, "rb") as a, open(target, "rb") as b:
            same = a.read() == b.read()
        if same:
            return
        if resuming:
            raise ConfigMismatchError(
                f"Cannot resume {run_dir}: its {run_dir_lib.VOCAB_FILENAME} differs from the "
                f"vocabulary {source} asked for (the checkpoints embed the run's word ids). "
                "Use a new --run_dir, or the run's vocabulary (--vocab_file).")
    try:
        shutil.copyfile(source, target + ".tmp")
        os.replace(target + ".tmp", target)
    finally:
        if os.path.exists(target + ".tmp"):
            os.remove(target + ".tmp")


def train(run_config: RunConfig, run_dir: str, progress: bool = True,
          max_steps: Optional[int] = None, split: Optional[str] = None,
          stop_on_sigterm: bool = False) -> Dict:
    """Trains (or resumes) the run in `run_dir` up to `train.iterations` steps.

    `max_steps`: stop once the completed-step counter reaches it (a checkpoint is
    written there); None = the full budget. `split`: the training split
    (default: `default_train_split(dataset)`).

    `stop_on_sigterm` (the `tf_rmi.train` entry point sets it; off for library
    callers, whose SIGTERM keeps its usual meaning): on SIGTERM (a preemption
    notice) while training, the step under way finishes,
    a checkpoint of it is saved and `train` returns with `preempted` set (under
    'multi_worker' every worker stops at the same step: the notice is all-reduced
    with each step). Rerunning resumes there. With `train.deterministic`, op
    determinism is enabled for the process (it stays on) and an interrupted run,
    resumed, ends bit-identical to an uninterrupted one.

    Under 'multi_worker' (TF_CONFIG) only the chief (`worker_role`) writes the
    run directory; every worker saves each checkpoint (MultiWorkerMirroredStrategy
    needs all of them to), the others into a temporary directory that is
    deleted after each save. All workers restore from `<run_dir>/checkpoints`.

    Returns a summary dict: `run_dir`, `start_step`, `step` (completed steps),
    `resumed`, `preempted`, `checkpoint` (latest prefix in the run directory),
    `global_batch`, `num_replicas`, `is_chief`, `vocab_size`, `losses` (total
    loss per step run in this call), `cls_losses`, `final_loss`,
    `final_cls_loss`, `final_reg_loss`, `pretrained` (import summary or None),
    `seconds`, `validations`, `best`.

    Raises NonFiniteLossError (the step named, no checkpoint written for it),
    ConfigMismatchError (resuming with another model config) and OSError (an
    unwritable or full run directory, named with the fix; nothing half-written).
    """
    from tf_rmi.data import pipeline
    from tf_rmi.training import trunk_cache

    started = time.time()
    run_config = resolve_vocab_size(run_config).validate()
    tcfg = run_config.train
    split = split or default_train_split(run_config.data.dataset)
    is_chief, task_id = worker_role(tcfg.strategy)
    latest = _prepare_run_dir(run_config, run_dir, write=is_chief)
    if tcfg.deterministic:
        tf.config.experimental.enable_op_determinism()

    previous_policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(tcfg.precision)
    saver = logger = None
    try:
        strategy = make_strategy(tcfg.strategy)
        num_replicas = strategy.num_replicas_in_sync
        global_batch = tcfg.batch_size * num_replicas
        # The global seed first: tf.data combines it with the shuffles' op seeds, so
        # the data order is a function of tcfg.seed alone (not of earlier seeding).
        keras.utils.set_random_seed(tcfg.seed)
        # Built before the (slow) model build so that bad records fail early.
        dataset = pipeline.train_dataset(run_config.data, split, batch_size=global_batch,
                                          seed=tcfg.seed, repeat=True,
                                          shuffle_buffer=tcfg.shuffle_buffer,
                                          input_size=run_config.model.input_size,
                                          num_words=run_config.model.num_words,
                                          bucket_by_length=tcfg.bucket_by_length)
        with strategy.scope():
            model, optimizer, step_var, checkpoint = build_training_state(run_config)
        checkpoint_dir = run_dir_lib.checkpoint_dir(run_dir)
        saver = CheckpointWriter(checkpoint, run_dir, tcfg.keep_checkpoints, is_chief, task_id)
        pretrained_summary = None
        if latest is not None:
            checkpoint.restore(latest).assert_existing_objects_matched()
        elif tcfg.pretrained:
            pretrained_summary = _load_pretrained(model, run_config).summary()
        trunk_features = None
        if tcfg.cache_trunk_features:  # after the trunk weights are final
            cache = trunk_cache.build_trunk_cache(
                model, run_config.data, split, input_size=run_config.model.input_size,
                num_words=run_config.model.num_words)
            trunk_features = cache.features
            dataset = pipeline.train_dataset(run_config.data, split, batch_size=global_batch,
                                             seed=tcfg.seed, repeat=True,
                                             shuffle_buffer=tcfg.shuffle_buffer,
                                             input_size=run_config.model.input_size,
                                             num_words=run_config.model.num_words,
                                             bucket_by_length=tcfg.bucket_by_length,
                                             trunk_rows=cache.lookup_table())
        start_step = int(step_var.numpy())
        end_step = tcfg.iterations if max_steps is None else min(tcfg.iterations, max_steps)
        iterator = iter(distributed_input(dataset, strategy, start_step, tcfg.strategy))
        # The replica step: the loss, gradients and update of the release (make_train_step).
        distributed_step = make_train_step(model, optimizer, tcfg, strategy=strategy,
                                           global_batch_size=global_batch,
                                           step_var=step_var,
                                           trunk_features=trunk_features).step
        validator = Validator(model, run_config, run_dir, tf.train.Checkpoint(model=model))
        if not is_chief:
            validator.every = 0  # the chief validates; the others wait at the next step
        logger = TrainingLogger(run_dir, tcfg.log_every, is_chief, start_step, end_step, progress)

        validations: List[dict] = []
        losses, cls_losses = [], []
        last = (float("nan"),) * 3
        step = start_step
        saved_step = start_step if latest is not None else None
        preempted = False
        with _StopSignal(signals=(signal.SIGTERM,) if stop_on_sigterm else ()) as stop_signal:
            while step < end_step:
                features, mask = next(iterator)
                lr = current_learning_rate(optimizer)
                stop_t = tf.constant(1 if stop_signal.received is not None else 0, tf.int32)
                cls_t, reg_t, counts_t, stop_any = distributed_step(features, mask, stop_t)
                cls_loss, reg_loss = float(cls_t.numpy()), float(reg_t.numpy())
                loss = cls_loss + reg_loss
                step += 1
                # Check before any snapshot logic: a bad step is never saved.
                if not math.isfinite(loss):
                    raise NonFiniteLossError(step, loss, cls_loss, reg_loss,
                                             tf.train.latest_checkpoint(checkpoint_dir))
                acc_all, acc_pos, acc_neg = pixel_accuracy(counts_t.numpy())
                losses.append(loss)
                cls_losses.append(cls_loss)
                last = (loss, cls_loss, reg_loss)
                logger.log_step(step, {"loss": loss, "cls_loss": cls_loss, "reg_loss": reg_loss,
                                       "learning_rate": lr, "accuracy/all": acc_all,
                                       "accuracy/positive": acc_pos,
                                       "accuracy/negative": acc_neg},
                                lambda at: _write_image_summaries(model, strategy, features,
                                                                  mask, at, trunk_features))
                # Single-process strategies stop on their own signal; workers on the
                # all-reduced one (all of them then stop after this same step).
                preempted = bool(stop_any.numpy()) if tcfg.strategy == "multi_worker" \
                    else stop_signal.received is not None
                if step % tcfg.snapshot_every == 0 or step == end_step or preempted:
                    saver.save(step)
                    saved_step = step
                if validator.due(step, end_step):
                    with logger.writer.as_default():
                        validations.append(validator.score(step))
                logger.show_progress(step, validations[-1]["overall_iou"] if validations
                                     else None)
                if preempted:
                    break
        if saved_step is None:  # max_steps=0 on a new run: still leave a snapshot
            saver.save(step)
        return {
            "run_dir": run_dir, "start_step": start_step, "step": step,
            "resumed": latest is not None, "preempted": preempted,
            "checkpoint": tf.train.latest_checkpoint(checkpoint_dir),
            "global_batch": global_batch, "num_replicas": num_replicas, "is_chief": is_chief,
            "vocab_size": run_config.model.vocab_size, "split": split,
            "losses": losses, "cls_losses": cls_losses, "final_loss": last[0],
            "final_cls_loss": last[1], "final_reg_loss": last[2],
            "pretrained": pretrained_summary, "seconds": time.time() - started,
            "validations": validations, "best": validator.best,
        }
    finally:
        if logger is not None:
            logger.close()
        keras.mixed_precision.set_global_policy(previous_policy)
        if saver is not None:
            saver.close()

def _write_image_summaries(model, strategy, features, mask, step: int,
                           trunk_features: Optional[tf.Tensor] = None) -> None:
    """Input image (de-preprocessed), ground-truth mask and probability map of a
    few samples; with cached trunk features (no pixels in the batch), the
    latter two only."""
    words = strategy.experimental_local_results(features["words"])[0][:SUMMARY_IMAGES]
    masks = strategy.experimental_local_results(mask)[0][:SUMMARY_IMAGES]
    if trunk_features is None:
        images = strategy.experimental_local_results(features["images"])[0][:SUMMARY_IMAGES]
        outputs = model((images, words), training=False)
        write_images("input", deprocess_images(images), step)
    else:
        rows = strategy.experimental_local_results(features["trunk_row"])[0][:SUMMARY_IMAGES]
        cached = tf.cast(tf.gather(trunk_features, rows), model.compute_dtype)
        outputs = model.segment(model.visual_proj(cached), words)
    probabilities = tf.cast(outputs["probabilities"], tf.float32)
    write_images("ground_truth", tf.cast(masks, tf.float32), step)
    write_images("probability", probabilities, step)
