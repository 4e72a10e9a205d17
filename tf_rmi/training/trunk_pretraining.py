"""Pretraining the small trunk on the synthetic set, the demo's stand-in for DeepLab.

The original never trains its trunk: DeepLab ResNet-101 comes pretrained for
semantic segmentation and stays frozen while the head learns (ORIGINAL.md).
The demo has no pretrained weights, and a trunk trained from scratch through
the head learns colours and shapes slowly (issue 10's diagnosis). This module
gives the small trunk what DeepLab gives the original: it first learns a
per-pixel labelling of the synthetic TRAINING images -- the colour, shape and
size class of the object that owns each pixel (0 = background) -- with three
1x1 classifiers on its output, and the referring-segmentation runs then load
it frozen (`TrainConfig.pretrained` with `trunk='small'`).

The labels come from the generator's scenes (`ShapesSource`), never from the
referring expressions, and only from the train split; validation images are
used only to report per-cell accuracies. Each label map goes through the same
`resize_and_pad_mask` as the training masks and is read at the pixels 8k, the
ones the head's training targets sample.

Files: `<output_dir>/trunk.index`, `trunk.data-*` (a `tf.train.Checkpoint` with
the trunk only) and `trunk.json` (the small-trunk settings it was built with,
the pretraining config, the accuracies and a probe output used to check a load).
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from tf_rmi.config import SMALL_TRUNK_FIELDS

CHECKPOINT_NAME = "trunk"
INFO_NAME = "trunk.json"
# The settings that define the trunk's function; a load refuses any difference.
TRUNK_FIELDS = SMALL_TRUNK_FIELDS
_PROBE_SIZE = 16  # side of the fixed random image whose (2x2-cell) trunk output checks a load


class TrunkPretrainingError(ValueError):
    """A pretrained small trunk that cannot be used (missing, other settings, other outputs)."""


@dataclasses.dataclass
class TrunkPretrainConfig:
    """Per-pixel labelling of the synthetic train images (chosen on val, issue 10)."""

    steps: int = 1000
    batch_size: int = 16
    learning_rate: float = 1e-3  # Adam
    seed: int = 0
    num_images: int = 0  # train images used; 0 = all of the source's
    num_val_images: int = 0  # val images scored; 0 = all of the source's


def label_heads() -> Tuple[Tuple[str, Tuple[str, ...]], ...]:
    """(head name, class names without background) for colour, shape and size."""
    from tf_rmi.data import shapes

    return (("colour", tuple(shapes.COLOURS)), ("shape", tuple(shapes.SHAPES)),
            ("size", tuple(shapes.SIZES)))


def cell_labels(scene, masks: np.ndarray, input_size: int, stride: int = 8) -> np.ndarray:
    """int32 [S, S, 3] with S = ceil(input_size / stride): per cell, the colour,
    shape and size class (1-based; 0 = background) of the object owning pixel
    (stride*i, stride*j) of the resized-and-padded image.

    scene: a `shapes.Scene`; masks: bool [K, H, W], its objects' visible pixels.
    """
    from tf_rmi.data.image_ops import resize_and_pad_mask

    heads = label_heads()
    labels = np.zeros((input_size, input_size, len(heads)), np.int32)
    for k, obj in enumerate(scene.objects):
        visible = resize_and_pad_mask(masks[k], input_size)
        values = (obj.colour, obj.shape, obj.size)
        for j, ((_, names), value) in enumerate(zip(heads, values)):
            labels[visible, j] = names.index(value) + 1
    return labels[::stride, ::stride]


def labelled_images(source, split: str, input_size: int, count: int = 0
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """(uint8 [N, size, size, 3] RGB resized and padded, int32 [N, S, S, 3] labels)
    for the first `count` images of `split` (0 = all)."""
    from tf_rmi.data.image_ops import resize_and_pad

    total = source.image_counts[split]
    count = total if count <= 0 else min(count, total)
    if count == 0:
        raise TrunkPretrainingError(
            f"The {split} split has no images: give the shapes source num_{split}_images > 0")
    images, labels = [], []
    for index in range(count):
        scene, image, masks = source._render(split, index)
        images.append(resize_and_pad(image, input_size))
        labels.append(cell_labels(scene, masks, input_size))
    return np.stack(images).astype(np.uint8), np.stack(labels)


# ShapesSource arguments that preprocessing records in the manifest's settings.
_SOURCE_SETTINGS = ("num_train_images", "num_val_images", "num_test_images", "min_size",
                    "max_size", "max_targets", "object_scale")


def shapes_source_for(tfrecord_dir: str):
    """The `ShapesSource` whose records are under `tfrecord_dir` (seed and image
    counts as recorded in its manifest), so the trunk learns the same images."""
    from tf_rmi.data.shards import read_manifest
    from tf_rmi.data.shapes import ShapesSource

    manifest = read_manifest(tfrecord_dir, "shapes")
    settings = manifest.get("settings") or {}
    if "seed" not in settings:
        raise TrunkPretrainingError(
            f"The shapes manifest under {tfrecord_dir} records no generator seed: write the "
            "records again with `make preprocess DATASET=shapes`")
    args = {k: settings[k] for k in _SOURCE_SETTINGS if k in settings}
    return ShapesSource(seed=int(settings["seed"]), **args)


def _probe_image(channels: int = 3) -> np.ndarray:
    """A fixed Caffe-range random image [1, P, P, 3] (independent of global seeds)."""
    return (np.random.RandomState(1234).uniform(-128, 128, (1, _PROBE_SIZE, _PROBE_SIZE, channels))
            .astype(np.float32))


def probe_output(trunk) -> np.ndarray:
    """float32 [cells * channels]: the trunk's whole output on the probe image
    (every cell, not a mean: a standardised output has zero mean by design)."""
    return trunk(_probe_image()).numpy().reshape(-1)


def _trunk_settings(model_cfg) -> Dict:
    return {name: getattr(model_cfg, name) for name in TRUNK_FIELDS}


def pretrain_small_trunk(model_cfg, source, output_dir: str,
                         cfg: TrunkPretrainConfig = TrunkPretrainConfig(),
                         progress: bool = True) -> Dict:
    """Trains `build_trunk(model_cfg)` (trunk='small') to label the cells of
    `source`'s train images and writes it to `output_dir` (replaced whole, never
    left half-written). Returns the contents of trunk.json: `settings`,
    `config`, `val_accuracy` (per head, over object cells), `val_accuracy_all`
    (over all cells), `initial_loss` and `final_loss` (means of the first and
    last 10 steps), `seconds`, `probe_output`.
    """
    import keras
    import tensorflow as tf

    from tf_rmi.data.image_ops import caffe_preprocess_tf
    from tf_rmi.models.trunk import build_trunk

    if model_cfg.trunk != "small":
        raise TrunkPretrainingError(f"Only the small trunk is pretrained here, not "
                                    f"trunk={model_cfg.trunk!r}")
    if cfg.steps < 1 or cfg.batch_size < 1 or not cfg.learning_rate > 0:
        raise TrunkPretrainingError(f"steps, batch_size and learning_rate must be positive: {cfg}")
    started = time.time()
    size = model_cfg.input_size
    train_images, train_labels = labelled_images(source, "train", size, cfg.num_images)
    val_images, val_labels = labelled_images(source, "val", size, cfg.num_val_images)

    keras.utils.set_random_seed(cfg.seed)
    trunk = build_trunk(model_cfg)
    heads = [keras.layers.Conv2D(len(names) + 1, 1, name=f"{name}_classifier")
             for name, names in label_heads()]
    for head in heads:
        head.build((None, None, None, trunk.output_channels))
    variables = trunk.trainable_variables + [v for h in heads for v in h.trainable_variables]
    optimizer = keras.optimizers.Adam(cfg.learning_rate)

    def logits(images):
        features = trunk(caffe_preprocess_tf(images))
        return [head(features) for head in heads]

    @tf.function
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            outputs = logits(images)
            loss = tf.add_n([
                tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels[..., j], out))
                for j, out in enumerate(outputs)])
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    dataset = (tf.data.Dataset.from_tensor_slices((train_images, train_labels))
               .shuffle(len(train_images), seed=cfg.seed, reshuffle_each_iteration=True)
               .repeat().batch(cfg.batch_size, drop_remainder=True).prefetch(2))
    losses: List[float] = []
    for step, (images, labels) in enumerate(dataset.take(cfg.steps), start=1):
        losses.append(float(train_step(images, labels)))
        if not np.isfinite(losses[-1]):
            raise TrunkPretrainingError(f"Trunk pretraining loss is {losses[-1]} at step {step}: "
                                        "lower the pretraining learning rate")
        if progress and (step % 250 == 0 or step == cfg.steps):
            print(f"  trunk pretraining step {step}/{cfg.steps}: loss "
                  f"{np.mean(losses[-250:]):.3f}", flush=True)

    correct_objects = np.zeros(len(heads))
    correct_all = np.zeros(len(heads))
    objects = cells = 0
    for start in range(0, len(val_images), 50):
        labels = val_labels[start:start + 50]
        predicted = [out.numpy().argmax(-1) for out in logits(val_images[start:start + 50])]
        foreground = labels[..., 0] > 0
        objects += int(foreground.sum())
        cells += foreground.size
        for j, pred in enumerate(predicted):
            correct_objects[j] += (pred == labels[..., j])[foreground].sum()
            correct_all[j] += (pred == labels[..., j]).sum()
    names = [name for name, _ in label_heads()]
    info = {
        "settings": _trunk_settings(model_cfg),
        "config": dataclasses.asdict(cfg),
        "train_images": int(len(train_images)),
        "val_images": int(len(val_images)),
        "val_accuracy": {n: float(c / max(objects, 1)) for n, c in zip(names, correct_objects)},
        "val_accuracy_all": {n: float(c / cells) for n, c in zip(names, correct_all)},
        "initial_loss": float(np.mean(losses[:10])),
        "final_loss": float(np.mean(losses[-10:])),
        "seconds": round(time.time() - started, 1),
        "probe_output": probe_output(trunk).tolist(),
    }
    _write_atomically(output_dir, trunk, info)
    return info


def _write_atomically(output_dir: str, trunk, info: Dict) -> None:
    """Writes the checkpoint and trunk.json into a temporary sibling, then renames it."""
    import tensorflow as tf

    from tf_rmi import atomic_io

    output_dir = os.path.abspath(output_dir)
    parent = os.path.dirname(output_dir)
    atomic_io.ensure_writable_dir(parent)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(output_dir)}.tmp-", dir=parent)
    try:
        tf.train.Checkpoint(trunk=trunk).write(os.path.join(tmp, CHECKPOINT_NAME))
        atomic_io.write_json(os.path.join(tmp, INFO_NAME), info)
        if os.path.isdir(output_dir):
            shutil.rmtree(output_dir)
        os.replace(tmp, output_dir)
    except (OSError, tf.errors.OpError) as err:
        shutil.rmtree(tmp, ignore_errors=True)
        raise OSError(atomic_io.unwritable_message(output_dir, err)) from None


@dataclasses.dataclass
class TrunkLoadReport:
    """What `load_small_trunk` did (`summary()` as the other pretrained imports)."""

    path: str
    variables: int
    val_accuracy: Dict[str, float]

    def summary(self) -> str:
        shown = ", ".join(f"{k} {100 * v:.1f} %" for k, v in self.val_accuracy.items())
        return (f"Loaded the pretrained small trunk from {self.path} ({self.variables} tensors; "
                f"val cell accuracy {shown}); outputs verified against its probe")


def _directory(path: str) -> str:
    """The pretrained-trunk directory of `path` (the directory or its checkpoint prefix)."""
    return path if os.path.isdir(path) else os.path.dirname(path)


def read_info(path: str) -> Dict:
    """trunk.json of a pretrained-trunk directory (`path` may also be the directory's
    `trunk` checkpoint prefix). Raises TrunkPretrainingError naming the fix."""
    directory = _directory(path)
    info_path = os.path.join(directory, INFO_NAME)
    if not os.path.exists(info_path):
        raise TrunkPretrainingError(
            f"{path} is not a pretrained small trunk (no {INFO_NAME} in {directory}): "
            "write one with `python -m tf_rmi.pretrain_trunk --output_dir=DIR` (or "
            "`make pretrain-trunk`) and pass --pretrained=DIR")
    try:
        with open(info_path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise TrunkPretrainingError(f"Cannot read {info_path} ({err}): pretrain the trunk "
                                    "again into a new directory") from None


def load_small_trunk(trunk, path: str, model_cfg) -> TrunkLoadReport:
    """Restores a `pretrain_small_trunk` output into `trunk` (built from
    `model_cfg`) and checks it: the same small-trunk settings, every variable
    restored, and the trunk's output on a fixed probe image equal to the one
    recorded at pretraining time (`np.testing.assert_allclose`)."""
    import tensorflow as tf

    info = read_info(path)
    directory = _directory(path)
    wanted = _trunk_settings(model_cfg)
    differences = [f"{k}: pretrained {info['settings'].get(k)!r}, asked {v!r}"
                   for k, v in wanted.items() if info["settings"].get(k) != v]
    if differences:
        raise TrunkPretrainingError(
            f"The pretrained trunk in {directory} was built with other settings "
            f"({'; '.join(differences)}): pretrain it again with the run's settings")
    prefix = os.path.join(directory, CHECKPOINT_NAME)
    try:
        tf.train.Checkpoint(trunk=trunk).read(prefix).assert_existing_objects_matched()
    except (tf.errors.OpError, AssertionError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TrunkPretrainingError(f"Cannot restore the pretrained trunk {prefix} ({first}): "
                                    "pretrain it again into a new directory") from None
    probe = probe_output(trunk)
    try:
        np.testing.assert_allclose(probe, np.asarray(info["probe_output"]), rtol=1e-4, atol=1e-5)
    except AssertionError:
        raise TrunkPretrainingError(
            f"The trunk restored from {prefix} does not reproduce the output recorded in "
            f"{INFO_NAME}: the files do not belong together; pretrain it again") from None
    return TrunkLoadReport(path=directory, variables=len(trunk.variables),
                           val_accuracy=dict(info.get("val_accuracy", {})))
