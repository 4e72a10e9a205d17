"""config: the dataset registry."""
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


def test_data_and_model_sizes_must_agree_only_for_training():
    cfg = config.RunConfig(model=config.ModelConfig(input_size=64))
    with pytest.raises(ValueError, match=r"data.input_size \(320\) differs from model.input_size"):
        cfg.validate()
    assert cfg.validate(for_training=False) is cfg  # a saved run read back to predict


def test_the_choices_are_the_models_own():
    from tf_rmi.models import layers, trunk

    assert config.SMALL_TRUNK_NORMS == trunk.SmallTrunk.NORMS
    assert config.UPSAMPLE_MODES == layers.UPSAMPLE_MODES
