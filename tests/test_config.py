"""config: the dataset registry, validation, config.json versions, partial configs."""
import dataclasses
import json
import os
import re

import pytest

from tests.conftest import REPO_ROOT
from tf_rmi import config


def test_registry_lookup_gives_the_datasets_spec():
    spec = config.dataset_spec("referit")
    assert spec.vocab_file == "vocabulary_referit.txt"
    assert spec.train_split == "trainval"
    assert (spec.iterations, spec.snapshot_every, spec.lr_decay_steps) == (750000, 50000, 750000)
    assert config.dataset_spec("shapes").lr_decay_steps == 0


def test_unknown_dataset_is_refused_listing_the_known_ones():
    with pytest.raises(ValueError, match=r"Unknown dataset 'nosuch': use one of unc, unc\+, "
                                         r"Gref, Gref_umd, referit, shapes"):
        config.dataset_spec("nosuch")


def test_dataset_specs_are_frozen():
    with pytest.raises(AttributeError):
        config.dataset_spec("unc").iterations = 1


def test_makefile_knows_the_registrys_datasets():
    with open(os.path.join(REPO_ROOT, "Makefile")) as f:
        known = re.search(r"^KNOWN_DATASETS := (.*)$", f.read(), re.M).group(1).split()
    assert known == list(config.DATASETS)


# ------------------------------------------------------------------ validate


def test_validate_names_the_field_and_its_allowed_values():
    bad = config.RunConfig(train=config.TrainConfig(strategy="tpu"))
    with pytest.raises(config.ConfigError, match="train.strategy must be one of default, "
                                                 "mirrored, multi_worker, got 'tpu'"):
        bad.validate()
    with pytest.raises(ValueError, match="train.eval_every must be 0 .* got -1"):
        config.RunConfig(train=config.TrainConfig(eval_every=-1)).validate()


def test_the_records_size_and_length_are_the_models_alone():
    assert not {"input_size", "num_words"} & {f.name for f in dataclasses.fields(config.DataConfig)}
    with pytest.raises(config.ConfigError, match="model.input_size must be 1 or more, got 0"):
        config.RunConfig(model=config.ModelConfig(input_size=0)).validate()
    with pytest.raises(config.ConfigError, match="model.num_words must be 1 or more, got 0"):
        config.RunConfig(model=config.ModelConfig(num_words=0)).validate()


def test_the_choices_are_the_models_own():
    from tf_rmi.models import layers, trunk

    assert config.SMALL_TRUNK_NORMS == trunk.SmallTrunk.NORMS
    assert config.UPSAMPLE_MODES == layers.UPSAMPLE_MODES


# ----------------------------------------------------------- config.json versions

# config.json as tf_rmi wrote it before lr_decay_steps existed (57b9713, the
# first config.json: no `version`), for a small-trunk shapes run.
OLD_CONFIG_JSON = """{"data": {"dataset": "shapes", "input_size": 320, "num_words": 20,
  "tfrecord_dir": "records", "vocab_file": null},
 "model": {"efficient_head": true, "embed_dim": 1000, "input_size": 320, "lstm_units": 1000,
  "mlstm_units": 500, "model": "RMI", "num_words": 20, "small_trunk_width": 32,
  "trunk": "small", "upsample": "tf1", "visual_dim": 1000, "vocab_size": 57,
  "weights": "deeplab"},
 "train": {"adam_beta1": 0.9, "adam_beta2": 0.999, "adam_epsilon": 1e-08, "batch_size": 1,
  "bias_lr_mult": 2.0, "end_learning_rate": 1e-05, "iterations": 1500, "jit_compile": false,
  "keep_checkpoints": 5, "learning_rate": 0.00025, "log_every": 20, "lr_power": 0.9,
  "precision": "float32", "pretrained": null, "seed": 0, "shuffle_buffer": 1000,
  "snapshot_every": 500, "strategy": "default", "weight_decay": 0.0005}}"""


def test_saved_config_carries_its_version_and_reads_back(tmp_path):
    cfg = config.RunConfig(train=config.TrainConfig(learning_rate=1e-3, pretrained="w.h5"))
    path = cfg.save(str(tmp_path))
    with open(path) as f:
        saved = json.load(f)
    assert saved["version"] == config.CONFIG_VERSION == 4
    assert set(saved["data"]) == {"dataset", "tfrecord_dir", "vocab_file"}
    assert config.RunConfig.load(str(tmp_path)) == cfg


def _version_2(run_config, data_input_size, data_num_words):
    """`run_config` as config.json version 2 wrote it: the data section with its
    own input_size and num_words."""
    values = dict(run_config.to_dict(), version=2)
    values["data"] = dict(values["data"], input_size=data_input_size, num_words=data_num_words)
    return values


def test_a_version_2_config_with_the_models_sizes_reads_as_the_current_version(tmp_path):
    cfg = config.RunConfig(model=config.ModelConfig(input_size=64, num_words=6))
    (tmp_path / "config.json").write_text(json.dumps(_version_2(cfg, 64, 6)))
    loaded = config.RunConfig.load(str(tmp_path))
    assert loaded == cfg and (loaded.model.input_size, loaded.model.num_words) == (64, 6)
    loaded.save(str(tmp_path))  # written back as the current version, data's copies gone
    assert json.loads((tmp_path / "config.json").read_text()) == cfg.to_dict()


@pytest.mark.parametrize("data_sizes,message", [
    ((320, 6), r"data.input_size \(320\) differs from model.input_size \(64\) in "),
    ((64, 20), r"data.num_words \(20\) differs from model.num_words \(6\) in "),
])
def test_a_version_2_config_whose_data_and_model_sizes_differ_is_refused(tmp_path, data_sizes,
                                                                          message):
    cfg = config.RunConfig(model=config.ModelConfig(input_size=64, num_words=6))
    (tmp_path / "config.json").write_text(json.dumps(_version_2(cfg, *data_sizes)))
    with pytest.raises(config.ConfigError, match=message + r".*config.json \(config version 2\)"
                                                           r": the file is inconsistent.* Delete "
                                                           r"data\.(input_size|num_words) from the "
                                                           r"file, after making model\."):
        config.RunConfig.load(str(tmp_path))


def test_a_version_less_config_is_migrated_to_what_its_tf_rmi_did(tmp_path):
    (tmp_path / "config.json").write_text(OLD_CONFIG_JSON)
    cfg = config.RunConfig.load(str(tmp_path))
    assert (cfg.model.input_size, cfg.model.num_words) == (320, 20)  # data's copies dropped
    # Before f882067 the learning rate decayed over the iteration budget.
    assert cfg.train.lr_decay_steps == 0
    assert (cfg.train.iterations, cfg.model.vocab_size, cfg.model.trunk) == (1500, 57, "small")
    plain_trunk = dict(small_trunk_input_scale=1.0, small_trunk_norm="none",
                       small_trunk_residual=False, small_trunk_aligned=False,
                       small_trunk_standardize=False, small_trunk_context=False)
    assert {k: getattr(cfg.model, k) for k in plain_trunk} == plain_trunk
    assert (cfg.train.eval_every, cfg.train.deterministic,
            cfg.train.trunk_learning_rate_mult) == (0, False, 1.0)
    # A version-less file that has the field keeps its value.
    values = json.loads(OLD_CONFIG_JSON)
    values["train"]["lr_decay_steps"] = 750000
    assert config.RunConfig.from_dict(values).train.lr_decay_steps == 750000


def test_a_missing_field_with_no_migration_is_refused_by_name():
    values = json.loads(OLD_CONFIG_JSON)
    del values["train"]["weight_decay"], values["model"]["visual_dim"]
    with pytest.raises(ValueError, match=r"lacks model.visual_dim, train.weight_decay, which no "
                                         r"recorded migration fills .* add them"):
        config.RunConfig.from_dict(values)
    current = config.RunConfig().to_dict()
    del current["train"]["lr_decay_steps"]  # migrations are for files without a version
    with pytest.raises(ValueError, match="lacks train.lr_decay_steps"):
        config.RunConfig.from_dict(current)


def test_a_version_3_config_batches_in_stream_order():
    values = dict(config.RunConfig().to_dict(), version=3)
    del values["train"]["bucket_by_length"]
    assert config.RunConfig.from_dict(values).train.bucket_by_length is False


def test_a_newer_config_version_is_refused():
    values = dict(config.RunConfig().to_dict(), version=5)
    with pytest.raises(ValueError, match="config version 5, newer than this tf_rmi reads \\(4\\)"):
        config.RunConfig.from_dict(values)


# ------------------------------------------------------- overrides, partial files


def test_overrides_parse_each_fields_type():
    cfg = config.apply_overrides(config.RunConfig(train=config.TrainConfig(pretrained="w.h5")), [
        "train.iterations=12", "train.learning_rate=1e-4", "train.jit_compile=true",
        "train.deterministic=1", "model.efficient_head=0", "model.model=LSTM",
        "train.pretrained=none", "data.vocab_file=words.txt", "train.adam_beta1=0.5"])
    assert (cfg.train.iterations, cfg.train.learning_rate, cfg.train.adam_beta1) == (12, 1e-4, 0.5)
    assert (cfg.train.jit_compile, cfg.train.deterministic, cfg.model.efficient_head) == (
        True, True, False)
    assert (cfg.model.model, cfg.train.pretrained, cfg.data.vocab_file) == (
        "LSTM", None, "words.txt")
    assert config.apply_overrides(cfg, ["train.jit_compile=False"]).train.jit_compile is False


@pytest.mark.parametrize("item,message", [
    ("eval.split=test", "unknown section 'eval'; valid sections: data, model, train"),
    ("train.lr=1e-3", "unknown field train.lr; valid train fields: iterations, snapshot_every,"),
    ("learning_rate=1e-3", "expected section.field=value"),
    ("data.num_words=6", "unknown field data.num_words; valid data fields: dataset, "
                         "tfrecord_dir, vocab_file (data.num_words is set as model.num_words now"),
])
def test_an_unknown_key_is_refused_listing_the_valid_ones(item, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        config.apply_overrides(config.RunConfig(), [item])


@pytest.mark.parametrize("item,message", [
    ("train.iterations=1.5", "train.iterations must be an integer, got '1.5'"),
    ("train.learning_rate=fast", "train.learning_rate must be a number, got 'fast'"),
    ("train.jit_compile=yes", "train.jit_compile must be true or false, got 'yes'"),
])
def test_a_bad_value_is_refused_with_the_fields_type(item, message):
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.apply_overrides(config.RunConfig(), [item])


def test_a_partial_config_file_sets_only_its_fields(tmp_path):
    path = tmp_path / "lstm.json"
    path.write_text('{"model": {"model": "LSTM"}, "train": {"learning_rate": 1, "seed": 3}}')
    cfg = config.apply_partial(config.RunConfig(), config.load_config_file(str(path)))
    assert (cfg.model.model, cfg.train.learning_rate, cfg.train.seed) == ("LSTM", 1.0, 3)
    assert cfg.train.iterations == config.TrainConfig().iterations
    path.write_text('{"train": {"seed": "3"}}')
    with pytest.raises(ValueError, match=r"train.seed must be an integer, got '3' \(in .*lstm"):
        config.load_config_file(str(path))


def test_set_is_applied_by_trains_config_builder_after_the_flags_and_the_file(tmp_path):
    from tf_rmi.training import train_lib

    path = tmp_path / "partial.json"
    path.write_text('{"model": {"model": "LSTM"}, "train": {"learning_rate": 1e-3}}')
    flag_values = dict(dataset="shapes", tfrecord_dir="records", learning_rate=5e-4)
    cfg = train_lib.config_from_command_line(
        flag_values, str(path), ["train.learning_rate=2e-3", "train.adam_beta2=0.99"])
    assert (cfg.model.model, cfg.train.learning_rate, cfg.train.adam_beta2) == ("LSTM", 2e-3, 0.99)
    assert cfg.train.iterations == config.dataset_spec("shapes").iterations  # from --dataset
    with pytest.raises(ValueError, match="model.trunk must be resnet101 or small, got 'vgg'"):
        train_lib.config_from_command_line(flag_values, None, ["model.trunk=vgg"])


def test_set_of_the_datas_former_input_size_is_refused_pointing_at_the_models(tmp_path):
    from tf_rmi import train_lib

    flag_values = dict(dataset="shapes", tfrecord_dir="records")
    hint = ("unknown field data.input_size; valid data fields: dataset, tfrecord_dir, "
            "vocab_file (data.input_size is set as model.input_size now")
    with pytest.raises(ValueError, match=re.escape(hint)):
        train_lib.config_from_command_line(flag_values, None, ["data.input_size=1"])
    path = tmp_path / "partial.json"
    path.write_text('{"data": {"input_size": 64}}')
    with pytest.raises(ValueError, match=re.escape(f"{path}: {hint}")):
        train_lib.config_from_command_line(flag_values, str(path))
    cfg = train_lib.config_from_command_line(flag_values, None, ["model.input_size=64"])
    assert cfg.model.input_size == 64


def test_trains_size_and_length_flags_fill_the_model_section():
    from tf_rmi import train_lib

    cfg = train_lib.config_from_flags("shapes", "records", input_size=64, num_words=6)
    assert (cfg.model.input_size, cfg.model.num_words) == (64, 6)
    assert cfg.data == config.DataConfig(dataset="shapes", tfrecord_dir="records")
    with pytest.raises(ValueError, match="--num_words must be 1 or more, got 0"):
        train_lib.config_from_flags("shapes", "records", num_words=0)
