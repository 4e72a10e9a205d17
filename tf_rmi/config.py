"""Configuration dataclasses, one per concern, with the paper's defaults.

Entry points fill these from flags; training writes the resolved `RunConfig`
as `config.json` beside its checkpoints, and evaluation / export read it back
instead of re-taking architecture flags.
"""
from __future__ import annotations

import dataclasses
import json
import numbers
import os
import types
from typing import Any, Mapping, Optional, Tuple

from tf_rmi import atomic_io
from tf_rmi.inference import THRESHOLD

CONFIG_FILENAME = "config.json"

# Training splits by name: written resized-and-padded to the input size
# (the original tested `'train' in setname`); every other split is an
# evaluation split, kept at original size.
TRAIN_SPLITS = ("train", "trainval")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What tf_rmi knows about one dataset flag: its files and its defaults."""

    name: str
    # The original's vocabulary file (shipped in tf_rmi/data/vocab/); None:
    # preprocessing builds the set's own vocabulary.
    vocab_file: Optional[str]
    splits: Tuple[str, ...]
    # The splits written as training records (TRAIN_SPLITS among `splits`);
    # the first is the one training reads by default.
    train_splits: Tuple[str, ...]
    # Training defaults (`train_lib.config_from_flags` when a flag is unset).
    iterations: int
    lr_decay_steps: int  # 0 = decay over `iterations`
    keep_checkpoints: int
    snapshot_every: int

    def __post_init__(self):
        if not self.train_splits or not set(self.train_splits) <= set(self.splits) & set(TRAIN_SPLITS):
            raise ValueError(f"{self.name}: train_splits {self.train_splits} must be among its "
                             f"splits {self.splits} and named as in {TRAIN_SPLITS}")

    @property
    def train_split(self) -> str:
        """The split training reads by default."""
        return self.train_splits[0]


def _paper_dataset(name: str, vocab_file: str, splits: Tuple[str, ...],
                   train_splits: Tuple[str, ...] = ("train",)) -> DatasetSpec:
    # The paper's Table 1 budget (the original README's 750000 iterations, a
    # snapshot every 50000), its fixed decay length (RMI_model's lr_decay_step
    # 750000 whatever the budget) and every snapshot kept (tf.train.Saver
    # max_to_keep=1000: 15 snapshots), so the one a paper row was read from is there.
    return DatasetSpec(name=name, vocab_file=vocab_file, splits=splits, train_splits=train_splits,
                       iterations=750000, lr_decay_steps=750000, keep_checkpoints=1000,
                       snapshot_every=50000)


# The one registry of datasets. The original's `vocabulary_Gref.txt` serves
# unc, unc+ and Gref; ReferIt has its own and trains on trainval.
DATASETS: Mapping[str, DatasetSpec] = types.MappingProxyType({spec.name: spec for spec in (
    _paper_dataset("unc", "vocabulary_Gref.txt", ("train", "val", "testA", "testB")),
    _paper_dataset("unc+", "vocabulary_Gref.txt", ("train", "val", "testA", "testB")),
    _paper_dataset("Gref", "vocabulary_Gref.txt", ("train", "val")),
    _paper_dataset("Gref_umd", "vocabulary_Gref.txt", ("train", "val", "test")),
    _paper_dataset("referit", "vocabulary_referit.txt", ("trainval", "test", "train", "val"),
                   train_splits=("trainval", "train")),
    # The synthetic set: its own vocabulary, a short budget decayed over
    # itself, the last 5 snapshots.
    DatasetSpec(name="shapes", vocab_file=None, splits=("train", "val", "test"),
                train_splits=("train",), iterations=3000, lr_decay_steps=0,
                keep_checkpoints=5, snapshot_every=1000),
)})


def dataset_spec(name: str) -> DatasetSpec:
    """The registry entry of dataset flag `name`; ValueError listing the known ones."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"Unknown dataset {name!r}: use one of {', '.join(DATASETS)}") from None


# The values a choice field may take (`RunConfig.validate`). The model code
# checks its own arguments too; tests/test_config.py keeps the two lists equal.
MODELS = ("RMI", "LSTM")  # RMI or the LSTM baseline
WEIGHTS = ("deeplab", "resnet")  # res5c + conv0, or the fc1000 logits
TRUNKS = ("resnet101", "small")
SMALL_TRUNK_NORMS = ("none", "group")
UPSAMPLE_MODES = ("tf1", "half_pixel")
STRATEGIES = ("default", "mirrored", "multi_worker")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


class ConfigError(ValueError):
    """A config field holds a value it may not: `field` ("train.strategy")
    and `problem` ("must be one of ..., got 'x'"); the message is both."""

    def __init__(self, field: str, problem: str):
        self.field, self.problem = field, problem
        super().__init__(f"{field} {problem}")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _one_of(choices) -> str:
    return f"{choices[0]} or {choices[1]}" if len(choices) == 2 else f"one of {', '.join(choices)}"


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

    def validate(self, for_training: bool = True) -> "RunConfig":
        """Checks every field's value and the rules between fields; returns self.

        Raises `ConfigError` (a ValueError) naming the field and what it may
        be. `for_training=False` (a saved config read back to evaluate, export
        or predict) leaves out what only reading training records needs: the
        data section's input_size / num_words equal to the model's.
        `data.dataset` may name records outside `DATASETS` (only the defaults
        of `train_lib.config_from_flags` come from the registry).
        """
        d, m, t = self.data, self.model, self.train
        choices = (("model.model", m.model, MODELS), ("model.weights", m.weights, WEIGHTS),
                   ("model.trunk", m.trunk, TRUNKS),
                   ("model.small_trunk_norm", m.small_trunk_norm, SMALL_TRUNK_NORMS),
                   ("model.upsample", m.upsample, UPSAMPLE_MODES),
                   ("train.strategy", t.strategy, STRATEGIES),
                   ("train.precision", t.precision, PRECISIONS))
        for name, value, allowed in choices:
            if value not in allowed:
                raise ConfigError(name, f"must be {_one_of(allowed)}, got {value!r}")
        if not isinstance(d.dataset, str) or not d.dataset:
            raise ConfigError("data.dataset", f"must name the records' dataset, got {d.dataset!r}")
        at_least = (("data.input_size", d.input_size, 1), ("data.num_words", d.num_words, 1),
                    ("model.small_trunk_width", m.small_trunk_width, 1),
                    ("model.small_trunk_norm_groups", m.small_trunk_norm_groups, 1),
                    ("train.iterations", t.iterations, 1),
                    ("train.snapshot_every", t.snapshot_every, 1),
                    ("train.batch_size", t.batch_size, 1), ("train.log_every", t.log_every, 1),
                    ("train.lr_decay_steps", t.lr_decay_steps, 0),
                    ("train.eval_every", t.eval_every, 0),
                    ("train.eval_max_expressions", t.eval_max_expressions, 0))
        for name, value, low in at_least:
            if not (_is_number(value) and value >= low):
                what = "0 (off) or more" if low == 0 else f"{low} or more"
                raise ConfigError(name, f"must be {what}, got {value!r}")
        for name, value in (("model.small_trunk_input_scale", m.small_trunk_input_scale),
                            ("train.trunk_learning_rate_mult", t.trunk_learning_rate_mult)):
            if not (_is_number(value) and value > 0):
                raise ConfigError(name, f"must be positive, got {value!r}")
        if t.trunk_learning_rate_mult != 1.0 and m.trunk != "small":
            raise ConfigError("train.trunk_learning_rate_mult", (
                f"needs trunk='small', got {t.trunk_learning_rate_mult} with the {m.trunk} "
                "trunk (frozen, as the original's): leave it at 1"))
        if t.pretrained and m.trunk == "small" and t.trunk_learning_rate_mult != 1.0:
            raise ConfigError("train.trunk_learning_rate_mult", (
                f"must be 1 with a pretrained small trunk, got {t.trunk_learning_rate_mult}: a "
                "pretrained trunk is frozen (as the original's), so it has no learning rate"))
        if for_training:
            for name in ("input_size", "num_words"):
                if getattr(d, name) != getattr(m, name):
                    raise ConfigError(f"data.{name}", (
                        f"({getattr(d, name)}) differs from model.{name} ({getattr(m, name)}): "
                        "the records are read at the model's size; set them equal"))
        return self

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
