"""Configuration: what each setting is, its default, what it may be, and its files.

Owns the dataset registry (`DATASETS`: one frozen `DatasetSpec` per dataset
flag, its vocabulary, splits and training defaults), the config dataclasses
(`DataConfig`, `ModelConfig`, `TrainConfig` in a `RunConfig`; `EvalConfig`)
with the paper's defaults, their checks (`RunConfig.validate`), the versioned
`config.json` format (`CONFIG_VERSION`; files of older tf_rmi read through
`_MIGRATIONS`) and partial configs of the same schema (`load_config_file`,
`apply_overrides` for `section.field=value` strings).

Entry points fill a RunConfig from flags (then a config file and overrides);
training writes the resolved one as `config.json` beside its checkpoints, and
evaluation / export read it back instead of re-taking architecture flags.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import math
import numbers
import os
import re
import types
import typing
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple, Union

from tf_rmi import atomic_io
from tf_rmi.serving.inference import THRESHOLD

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
# The ModelConfig fields of the small trunk's architecture: what a pretrained
# small trunk records (trunk_pretraining) and what train and pretrain-trunk
# must agree on.
SMALL_TRUNK_FIELDS = ("small_trunk_width", "small_trunk_input_scale", "small_trunk_norm",
                      "small_trunk_norm_groups", "small_trunk_residual", "small_trunk_aligned",
                      "small_trunk_standardize", "small_trunk_context")
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
    """Where the TFRecords are and their vocabulary. Their image side and T
    are the model's (`ModelConfig.input_size` / `num_words`, set once): the
    readers check the records against those."""

    dataset: str = "shapes"
    tfrecord_dir: str = "data/tfrecords"  # holds <dataset>/<split>-*.tfrecord
    vocab_file: Optional[str] = None  # resolved from the manifest when None


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
    input_size: int = 320  # S: training records are resized-and-padded to S x S
    num_words: int = 20  # T: words kept per expression, front-padded with 0
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
    # Each batch from one bucket of sentence lengths (pipeline.train_dataset):
    # a batch then runs about as many head steps as its sentences are long,
    # not as its longest one. Not the original's (batch 1, where it changes
    # nothing); the demo's batches of 16 train about twice as fast with it.
    bucket_by_length: bool = False
    # A frozen trunk's outputs computed once per training image and looked up
    # by the step (training/trunk_cache.py); one device only, features in memory.
    cache_trunk_features: bool = False
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
    # DenseCRF worker processes (0 = one per CPU core; 1 = in this process).
    # The scores do not depend on it (eval_lib._CrfRefiner).
    crf_workers: int = 0
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
        """The config.json form: `version` (CONFIG_VERSION) and the three sections."""
        return {"version": CONFIG_VERSION, **dataclasses.asdict(self)}

    def validate(self) -> "RunConfig":
        """Checks every field's value and the rules between fields; returns self.

        Raises `ConfigError` (a ValueError) naming the field and what it may
        be. `data.dataset` may name records outside `DATASETS` (only the
        defaults of `train_lib.config_from_flags` come from the registry).
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
        at_least = (("model.input_size", m.input_size, 1), ("model.num_words", m.num_words, 1),
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
        if t.cache_trunk_features and not (m.trunk == "resnet101" or t.pretrained):
            raise ConfigError("train.cache_trunk_features", (
                "needs a frozen trunk (resnet101, or a pretrained small trunk), got a small "
                "trunk trained from scratch: set train.pretrained or turn the cache off"))
        if t.cache_trunk_features and t.strategy != "default":
            raise ConfigError("train.cache_trunk_features", (
                f"works on one device (strategy 'default'), got {t.strategy!r}: turn the "
                "cache off"))
        if t.trunk_learning_rate_mult != 1.0 and m.trunk != "small":
            raise ConfigError("train.trunk_learning_rate_mult", (
                f"needs trunk='small', got {t.trunk_learning_rate_mult} with the {m.trunk} "
                "trunk (frozen, as the original's): leave it at 1"))
        if t.pretrained and m.trunk == "small" and t.trunk_learning_rate_mult != 1.0:
            raise ConfigError("train.trunk_learning_rate_mult", (
                f"must be 1 with a pretrained small trunk, got {t.trunk_learning_rate_mult}: a "
                "pretrained trunk is frozen (as the original's), so it has no learning rate"))
        return self

    @classmethod
    def from_dict(cls, d: Mapping, source: str = "run config") -> "RunConfig":
        """Reads the config.json form: every field of every section, typed as
        the dataclasses say, then `validate()`.

        A dict of an older `version` (none: 1, before versions) is read through
        `_MIGRATIONS`: each field added since that it lacks is filled with the
        value that makes today's code do what the writer's did; each field
        removed since is dropped once checked to equal the field that holds its
        value now (ConfigError naming both when they differ). A missing field
        with no recorded migration, a `version` newer than CONFIG_VERSION, an
        unknown section or field and a badly typed value are refused
        (ValueError naming `source`).
        """
        if not isinstance(d, Mapping):
            raise ValueError(f"{source}: a run config is a JSON object, got {type(d).__name__}")
        version = d.get("version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise ValueError(f"{source}: version must be an integer from 1 to "
                             f"{CONFIG_VERSION}, got {version!r}")
        if version > CONFIG_VERSION:
            raise ValueError(
                f"{source} is config version {version}, newer than this tf_rmi reads "
                f"({CONFIG_VERSION}): read it with the tf_rmi that wrote it, or update tf_rmi")
        values = {k: v for k, v in d.items() if k != "version"}
        _check_section_names(values, source)  # the fields once migrated (check_partial)
        sections = {name: dict(values.get(name, {})) for name in SECTIONS}
        for older in range(version, CONFIG_VERSION):
            for migration in _MIGRATIONS.get(older, ()):
                migration.apply(sections, f"{source} (config version {version})")
        missing = [f"{name}.{f.name}" for name, section_cls in SECTIONS.items()
                   for f in dataclasses.fields(section_cls) if f.name not in sections[name]]
        if missing:
            raise ValueError(
                f"{source} (config version {version}) lacks {', '.join(missing)}, which no "
                "recorded migration fills (tf_rmi/config.py _MIGRATIONS): add them to it with "
                "the values the run was trained with")
        checked = check_partial(sections, source)
        config = cls(**{name: SECTIONS[name](**checked[name]) for name in SECTIONS})
        try:
            return config.validate()
        except ConfigError as err:
            raise ConfigError(err.field, f"{err.problem} (in {source})") from None

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
        return cls.from_dict(_read_json(path), source=path)


# ------------------------------------------------------------- config.json schema

# The config.json format. 2: `version` written, every field present. 3:
# data.input_size / data.num_words gone (model.input_size / model.num_words are
# the run's, records included). Files without `version` (1) come from tf_rmi
# before 2; older files are read through `_MIGRATIONS`.
CONFIG_VERSION = 4

SECTIONS = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}


@dataclasses.dataclass(frozen=True)
class Migration:
    """How a config.json of an older version that lacks `section.field` is
    read: with `value`, which makes today's code do what its writer did."""

    section: str
    field: str
    value: Any
    commit: str  # the commit that added the field
    why: str

    def apply(self, sections: Dict[str, Dict[str, Any]], source: str) -> None:
        sections[self.section].setdefault(self.field, self.value)


@dataclasses.dataclass(frozen=True)
class Removal:
    """How a config.json of an older version that holds `section.field`, a
    field since removed, is read: without it, once checked to equal `kept_in`
    ("model.input_size"), the one field that holds its value now. A file where
    the two differ is inconsistent: refused (ConfigError naming both, and the fix)."""

    section: str
    field: str
    kept_in: str
    why: str

    def apply(self, sections: Dict[str, Dict[str, Any]], source: str) -> None:
        if self.field not in sections[self.section]:
            return
        value = sections[self.section].pop(self.field)
        owner_section, owner_field = self.kept_in.split(".")
        kept = sections[owner_section].get(owner_field, value)  # missing: named later
        if kept != value:
            raise ConfigError(f"{self.section}.{self.field}", (
                f"({value!r}) differs from {self.kept_in} ({kept!r}) in {source}: the file "
                f"is inconsistent, and only {self.kept_in} holds the value now. Delete "
                f"{self.section}.{self.field} from the file, after making {self.kept_in} the "
                "value the run was trained with"))


# Per version: the fields added since, each with the value that reproduces
# what tf_rmi did before it (Migration), and the fields removed since, each
# with the one that holds its value now (Removal). Only what a field can
# express is here: code changes no field undoes are not (the training stream
# of 95df6fa; the small trunk's layers of f6a853a, whose older checkpoints no
# longer restore).
_MIGRATIONS: Dict[int, Tuple[Union[Migration, Removal], ...]] = {
    1: (
        Migration("train", "lr_decay_steps", 0, "f882067",
                  "the decay ran over `iterations` (0); the field came with today's default, "
                  "the original's fixed 750000"),
        Migration("model", "small_trunk_input_scale", 1.0, "1115879",
                  "the small trunk took the Caffe-preprocessed input unscaled"),
        Migration("model", "small_trunk_norm", "none", "1115879",
                  "no normalisation between conv and ReLU"),
        Migration("model", "small_trunk_norm_groups", 4, "1115879",
                  "read only with small_trunk_norm='group'"),
        Migration("train", "eval_every", 0, "1115879", "no validation during training"),
        Migration("train", "eval_split", "val", "1115879", "read only when eval_every > 0"),
        Migration("train", "eval_max_expressions", 0, "1115879",
                  "read only when eval_every > 0"),
        Migration("model", "small_trunk_residual", False, "0dab5e9", "no identity shortcuts"),
        Migration("model", "small_trunk_aligned", False, "8e406d0",
                  "TF SAME padding of the stride-2 convs"),
        Migration("train", "deterministic", False, "9eee388", "op determinism not enabled"),
        Migration("model", "small_trunk_standardize", False, "c3711d9",
                  "conv7 with ReLU, not standardised"),
        Migration("train", "trunk_learning_rate_mult", 1.0, "c3711d9",
                  "the small trunk stepped at the learning rate"),
        Migration("model", "small_trunk_context", False, "91c54f2",
                  "no directional maxima appended"),
    ),
    2: (
        Removal("data", "input_size", "model.input_size",
                "a copy for the records, which training required equal to the model's"),
        Removal("data", "num_words", "model.num_words",
                "a copy for the records, which training required equal to the model's"),
    ),
    3: (
        Migration("train", "bucket_by_length", False, "44e73ff",
                  "batches in stream order, whatever their sentences' lengths"),
        Migration("train", "cache_trunk_features", False, "44e73ff",
                  "the trunk ran on every batch's images"),
    ),
}

# "data.input_size" -> "model.input_size": where a removed field's value is set now.
_MOVED_FIELDS: Dict[str, str] = {
    f"{change.section}.{change.field}": change.kept_in
    for changes in _MIGRATIONS.values() for change in changes if isinstance(change, Removal)}


def _read_json(path: str) -> Any:
    with open(path, encoding="utf-8") as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path} is not valid JSON: {err}") from None


@functools.lru_cache(maxsize=None)
def _field_types(section: str) -> Dict[str, Any]:
    return typing.get_type_hints(SECTIONS[section])


_TYPE_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
               Optional[str]: "a string or none"}


def _type_name(section: str, name: str) -> str:
    return _TYPE_NAMES[_field_types(section)[name]]


def _check_section_names(values: Mapping, source: str) -> None:
    """Refuses a section the schema does not have (naming the valid ones) or
    one that is not a JSON object."""
    for section, fields in values.items():
        if section not in SECTIONS:
            raise ValueError(f"{source}: unknown section {section!r}; valid sections: "
                             f"{', '.join(SECTIONS)}")
        if not isinstance(fields, Mapping):
            raise ValueError(f"{source}: section {section!r} must be a JSON object of fields, "
                             f"got {fields!r}")


def _check_sections(values: Mapping, source: str) -> None:
    """Refuses a section or field the schema does not have, naming the valid
    ones (and, for a removed field, the one to set instead)."""
    _check_section_names(values, source)
    for section, fields in values.items():
        names = [f.name for f in dataclasses.fields(SECTIONS[section])]
        for name in fields:
            if name not in names:
                moved = _MOVED_FIELDS.get(f"{section}.{name}")
                hint = (f" ({section}.{name} is set as {moved} now: the model's value, which "
                        "the records are checked against)") if moved else ""
                raise ValueError(f"{source}: unknown field {section}.{name}; valid {section} "
                                 f"fields: {', '.join(names)}{hint}")


def _json_value(section: str, name: str, value: Any, source: str) -> Any:
    """`value` as read from JSON, checked against the field's type."""
    kind = _field_types(section)[name]
    if kind is bool:
        ok = isinstance(value, bool)
    elif kind is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind is str:
        ok = isinstance(value, str)
    elif kind == Optional[str]:
        ok = value is None or isinstance(value, str)
    else:  # a field of a new type: teach _TYPE_NAMES, _json_value and _text_value
        raise TypeError(f"{section}.{name} has type {kind}, which config files cannot hold")
    if not ok:
        raise ConfigError(f"{section}.{name}",
                          f"must be {_type_name(section, name)}, got {value!r} (in {source})")
    return value


_BAD = object()  # "does not parse" (None is a value: Optional[str]'s none)


def _text_value(section: str, name: str, text: str, source: str) -> Any:
    """`text` (an override's value) parsed by the field's type: int, float
    (1e-4 too), bool (true/false/1/0), str, Optional[str] ("none" is None)."""
    kind = _field_types(section)[name]
    word = text.strip().lower()
    value: Any = _BAD
    if kind is bool:
        value = {"true": True, "1": True, "false": False, "0": False}.get(word, _BAD)
    elif kind is int:
        value = int(word) if re.fullmatch(r"[+-]?\d+", word) else _BAD
    elif kind is float:
        try:
            value = float(word)
        except ValueError:
            pass
        if value is not _BAD and not math.isfinite(value):
            value = _BAD
    elif kind is str:
        value = text
    elif kind == Optional[str]:
        value = None if word == "none" else text
    if value is _BAD:
        raise ConfigError(f"{section}.{name}",
                          f"must be {_type_name(section, name)}, got {text!r} (in {source})")
    return value


def check_partial(values: Mapping, source: str) -> Dict[str, Dict[str, Any]]:
    """A partial run config ({section: {field: JSON value}}, some sections,
    some fields) with names and types checked; an optional `version` must be
    CONFIG_VERSION. Raises ValueError naming `source`, the field and the fix."""
    if not isinstance(values, Mapping):
        raise ValueError(f"{source}: a config is a JSON object of sections "
                         f"({', '.join(SECTIONS)}), got {type(values).__name__}")
    values = dict(values)
    version = values.pop("version", CONFIG_VERSION)
    if version != CONFIG_VERSION:
        raise ValueError(f"{source}: version {version!r}, but a config file applied to a run "
                         f"is read as version {CONFIG_VERSION}: drop `version` or write "
                         f"{CONFIG_VERSION}")
    _check_sections(values, source)
    return {section: {name: _json_value(section, name, value, source)
                      for name, value in fields.items()}
            for section, fields in values.items()}


def load_config_file(path: str) -> Dict[str, Dict[str, Any]]:
    """A partial run config from JSON file `path` (`check_partial`): e.g.
    `{"train": {"learning_rate": 1e-3}, "model": {"model": "LSTM"}}`; apply it
    with `apply_partial`. A run's own config.json (of CONFIG_VERSION) is one too."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No config file {path}: pass a JSON file of sections "
                                f"({', '.join(SECTIONS)}) with the fields to set")
    return check_partial(_read_json(path), source=path)


def apply_partial(run_config: RunConfig, partial: Mapping[str, Mapping[str, Any]]) -> RunConfig:
    """`run_config` with the fields of a checked partial config replaced (not validated:
    validate once every layer is applied)."""
    return dataclasses.replace(run_config, **{
        section: dataclasses.replace(getattr(run_config, section), **fields)
        for section, fields in partial.items() if fields})


def parse_override(item: str) -> Tuple[str, str, Any]:
    """`"section.field=value"` -> (section, field, value parsed by the field's type)."""
    source = f"override {item!r}"
    key, sep, text = item.partition("=")
    section, dot, name = key.strip().partition(".")
    if not sep or not dot or not name or "." in name:
        raise ValueError(f"{source}: expected section.field=value (sections "
                         f"{', '.join(SECTIONS)}), e.g. train.learning_rate=1e-3")
    _check_sections({section: {name: None}}, source)
    return section, name, _text_value(section, name, text, source)


def apply_overrides(run_config: RunConfig, overrides: Sequence[str]) -> RunConfig:
    """`run_config` with each `section.field=value` of `overrides` applied in
    order (sections data, model, train; `parse_override`); not validated."""
    partial: Dict[str, Dict[str, Any]] = {}
    for item in overrides:
        section, name, value = parse_override(item)
        partial.setdefault(section, {})[name] = value
    return apply_partial(run_config, partial)
