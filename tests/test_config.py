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
