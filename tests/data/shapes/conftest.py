"""Fixtures shared by the shapes tests: one small source, built once for the package."""
import pytest

from tf_rmi.data import shapes


@pytest.fixture(scope="package")
def source():
    return shapes.ShapesSource(seed=3, num_train_images=40, num_val_images=6,
                               num_test_images=6)


@pytest.fixture(scope="package")
def train_pairs(source):
    return source.referring_expressions("train")
