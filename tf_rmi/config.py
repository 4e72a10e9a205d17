"""Configuration dataclasses, one per concern, with the paper's defaults.

Entry points fill these from flags; training writes the resolved `RunConfig`
as `config.json` beside its checkpoints, and evaluation / export read it back
instead of re-taking architecture flags.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Any, Optional

from tf_rmi import atomic_io
from tf_rmi.inference import THRESHOLD

CONFIG_FILENAME = "config.json"

# The original vocabularies: `Gref` serves unc, unc+ and Gref; ReferIt has its own.
VOCAB_FOR_DATASET = {
    "unc": "vocabulary_Gref.txt",
    "unc+": "vocabulary_Gref.txt",
    "Gref": "vocabulary_Gref.txt",
    "Gref_umd": "vocabulary_Gref.txt",
    "referit": "vocabulary_referit.txt",
    "shapes": None,  # the synthetic set builds its own vocabulary
}

# Splits per dataset, and which of them are training splits (resized-and-padded
# to 320x320 when written) versus evaluation splits (kept at original size).
SPLITS_FOR_DATASET = {
    "unc": ("train", "val", "testA", "testB"),
    "unc+": ("train", "val", "testA", "testB"),
    "Gref": ("train", "val"),
    "Gref_umd": ("train", "val", "test"),
    "referit": ("trainval", "test", "train", "val"),
    "shapes": ("train", "val", "test"),
}
TRAIN_SPLITS = ("train", "trainval")

# Iteration budgets of the paper's Table 1 runs, recorded in one place.
# The original README's example budget is 750000 with a snapshot every 50000.
DEFAULT_ITERATIONS = {
    "unc": 750000,
    "unc+": 750000,
    "Gref": 750000,
    "Gref_umd": 750000,
    "referit": 750000,
    "shapes": 3000,
}
# Polynomial-decay length: the original's 750000 for the real datasets; the
# synthetic set decays over its own short budget (0 = over `iterations`).
DEFAULT_LR_DECAY_STEPS = {
    "unc": 750000, "unc+": 750000, "Gref": 750000, "Gref_umd": 750000,
    "referit": 750000, "shapes": 0,
}
# Snapshots kept: the original keeps every one (tf.train.Saver max_to_keep=1000;
# 15 for 750000 iterations at 50000), so the snapshot a paper row was read from
# is still there; the synthetic set keeps the last 5.
DEFAULT_KEEP_CHECKPOINTS = {
    "unc": 1000, "unc+": 1000, "Gref": 1000, "Gref_umd": 1000, "referit": 1000,
    "shapes": 5,
}
DEFAULT_SNAPSHOT_EVERY = {
    "unc": 50000,
    "unc+": 50000,
    "Gref": 50000,
    "Gref_umd": 50000,
    "referit": 50000,
    "shapes": 1000,
}


@dataclasses.dataclass
class DataConfig:
    """Where the TFRecords are and how they were written."""

    dataset: str = "shapes"
    tfrecord_dir: str = "data/tfrecords"  # holds <dataset>/<split>-*.tfrecord
    vocab_file: Optional[str] = None  # resolved from the manifest when None
    input_size: int = 320  # training images are resized-and-padded to this
    num_words: int = 20  # T: words kept per expression, front-padded with 0


@dataclasses.dataclass
class ModelConfig:
    """Architecture. Defaults are the paper's (D+RMI at 320x320, 20 words)."""

    model: str = "RMI"  # "RMI" or "LSTM" (the baseline)
    weights: str = "deeplab"  # "deeplab" (res5c + conv0) or "resnet" (fc1000)
    trunk: str = "resnet101"  # "resnet101" or "small" (CPU work, same interface)
    small_trunk_width: int = 32  # base width of the small trunk
    # The small trunk only (no counterpart in the original): input multiplier
    # and normalisation ("none" or "group"), see models/trunk.SmallTrunk.
    small_trunk_input_scale: float = 1.0
    small_trunk_norm: str = "none"
    small_trunk_norm_groups: int = 4
    small_trunk_residual: bool = False  # identity shortcuts around the stride-1 convs
    small_trunk_aligned: bool = False  # cell k centred on pixel 8k (see SmallTrunk)
    small_trunk_standardize: bool = False  # linear conv7, output standardised per image
    small_trunk_context: bool = False  # + directional maxima (left/right/above/below)
    vocab_size: int = 12112
    input_size: int = 320
    num_words: int = 20
    visual_dim: int = 1000  # D_I: fc1000 logits or conv0 output
    embed_dim: int = 1000  # word embedding size
    lstm_units: int = 1000  # language LSTM
    mlstm_units: int = 500  # multimodal LSTM (RMI) / conv1 width (baseline)
    efficient_head: bool = True  # precompute the step-invariant input projection
    upsample: str = "tf1"  # "tf1" (original resize_bilinear) or "half_pixel"

    @property
    def feature_size(self) -> int:
        """Side of the feature map: output stride 8 (40 for 320)."""
        return (self.input_size + 7) // 8


@dataclasses.dataclass
class TrainConfig:
    """The original recipe: Adam 2.5e-4, poly decay 0.9 to 1e-5, batch 1."""

    iterations: int = 750000
    snapshot_every: int = 50000
    batch_size: int = 1  # global batch = per-replica batch x replicas
    learning_rate: float = 2.5e-4
    end_learning_rate: float = 1e-5
    # The original decays over 750000 steps whatever the budget (RMI_model's
    # lr_decay_step); 0 means "over `iterations`".
    lr_decay_steps: int = 750000
    lr_power: float = 0.9
    weight_decay: float = 5e-4
    bias_lr_mult: float = 2.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    # The small trunk only (the original's trunk is frozen: it has no learning
    # rate): its variables step at learning_rate x this (train_lib.make_optimizer).
    trunk_learning_rate_mult: float = 1.0
    pretrained: Optional[str] = None  # trunk weights to start from
    keep_checkpoints: int = 5
    shuffle_buffer: int = 1000
    seed: int = 0
    strategy: str = "default"  # "default", "mirrored" or "multi_worker"
    precision: str = "float32"  # or "mixed_float16", "mixed_bfloat16"
    jit_compile: bool = False
    # tf.config.experimental.enable_op_determinism (process-wide) plus the seeds:
    # two runs, and a killed-and-resumed run, end bit-identical (train_lib.train).
    deterministic: bool = False
    log_every: int = 20
    # Validation during training (checkpoint selection on val): every
    # `eval_every` steps (0 = never) score `eval_split` (at most
    # `eval_max_expressions`, 0 = all), log it to TensorBoard and keep the best
    # step's snapshot in <run_dir>/best/ (see train_lib.Validator).
    eval_every: int = 0
    eval_split: str = "val"
    eval_max_expressions: int = 0


@dataclasses.dataclass
class EvalConfig:
    """Scoring as the original: the upsampled logits thresholded at
    `inference.THRESHOLD` (1e-9), mapped back, I and U at original size."""

    split: str = "val"
    threshold: float = THRESHOLD
    crf: bool = False
    iou_thresholds: tuple = (0.5, 0.6, 0.7, 0.8, 0.9)
    num_length_groups: int = 4
    shared_trunk: bool = True
    max_expressions: int = 0  # 0 = all
    visualize: int = 0


@dataclasses.dataclass
class RunConfig:
    """Everything a run needs; saved as `config.json` in the run directory."""

    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "RunConfig":
        return cls(
            data=_fill(DataConfig, d.get("data", {})),
            model=_fill(ModelConfig, d.get("model", {})),
            train=_fill(TrainConfig, d.get("train", {})),
        )

    def save(self, run_dir: str) -> str:
        """Writes `config.json` atomically (temp name, then rename)."""
        os.makedirs(run_dir, exist_ok=True)
        path = os.path.join(run_dir, CONFIG_FILENAME)
        return atomic_io.write_json(path, self.to_dict())

    @classmethod
    def load(cls, run_dir: str) -> "RunConfig":
        path = run_dir
        if os.path.isdir(run_dir):
            path = os.path.join(run_dir, CONFIG_FILENAME)
        if not os.path.exists(path):
            raise FileNotFoundError(
                f"No run config at {path}: point at a run directory written by "
                "`make train` (it holds config.json beside the checkpoints).")
        with open(path) as f:
            return cls.from_dict(json.load(f))


def _fill(cls, values: dict) -> Any:
    """Builds dataclass `cls` from `values`, rejecting unknown keys by name."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"Unknown {cls.__name__} fields {unknown}; known: {sorted(names)}")
    out = dict(values)
    for f in dataclasses.fields(cls):
        if f.name in out and isinstance(f.default, tuple):
            out[f.name] = tuple(out[f.name])
    return cls(**out)
