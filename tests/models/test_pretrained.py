"""Pretrained trunk import: DeepLab/ResNet checkpoints and .npy dicts, Keras ResNet101 .h5.

Fixtures write random-valued files in the exact formats the loaders read (full
ResNet-101 sizes, ~170 MB each) into a per-module temporary directory that is
removed afterwards.
"""
import os
import tempfile

import h5py
import numpy as np
import pytest
import tensorflow as tf

from tf_rmi.models import pretrained
from tf_rmi.models.pretrained import ImportVerificationError, PretrainedWeightsError
from tf_rmi.models.trunk import ResNet101Trunk

ASPP_NAMES = [f"fc1_voc12/conv{i}/{kind}" for i in range(4) for kind in ("DW", "biases")]


# ------------------------------------------------------------------ file writers


def random_original_values(has_factor, seed):
    """{original name: array} for every trunk variable, plus DeepLab's ASPP classifier."""
    rng = np.random.default_rng(seed)
    values = {}
    for name, var in ResNet101Trunk(has_factor=has_factor).original_variables().items():
        shape = tuple(var.shape)
        if name.endswith("/variance") or name.endswith("/factor"):
            values[name] = rng.uniform(1.0, 3.0, shape).astype(np.float32)
        else:
            values[name] = rng.normal(0.0, 0.05, shape).astype(np.float32)
    if has_factor:
        for name in ASPP_NAMES:
            shape = (3, 3, 2048, 21) if name.endswith("DW") else (21,)
            values[name] = rng.normal(0.0, 0.01, shape).astype(np.float32)
    return values


def write_tf1_checkpoint(values, prefix, scope, extra=None):
    """A name-based TF checkpoint as TF1's Saver writes it (SaveV2: .index + .data)."""
    tensors = {f"{scope}/{name}": value for name, value in values.items()}
    tensors.update(extra or {})
    names = sorted(tensors)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(tensors[n]) for n in names])
    return prefix


def write_npy(values, path):
    """The converter's .npy: np.save of a flat dict keyed without the scope."""
    np.save(path, values)
    return path


def write_keras_legacy_h5(model, path, skip=(), replace=None):
    """Keras 2 HDF5 weights layout (as the Keras Applications files are stored)."""
    replace = replace or {}
    with h5py.File(path, "w") as f:
        layers = [layer for layer in model.layers if layer.name not in skip]
        f.attrs["layer_names"] = [layer.name.encode("utf8") for layer in layers]
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for layer in layers:
            group = f.create_group(layer.name)
            weights = layer.trainable_weights + layer.non_trainable_weights
            names = [f"{layer.name}/{w.name}:0" for w in weights]
            group.attrs["weight_names"] = [n.encode("utf8") for n in names]
            for name, weight in zip(names, weights):
                group.create_dataset(name, data=replace.get(name, np.asarray(weight)))
    return path


def randomize_keras(model, seed):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        values = []
        for weight in layer.trainable_weights + layer.non_trainable_weights:
            shape = tuple(weight.shape)
            if weight.name == "kernel":
                value = rng.normal(0.0, np.sqrt(1.0 / np.prod(shape[:-1])), shape)
            elif weight.name == "moving_variance":
                value = rng.uniform(1e-4, 2.0, shape)  # small ones make the epsilon matter
            elif weight.name == "gamma":
                value = rng.uniform(0.5, 1.5, shape)
            else:  # bias, beta, moving_mean
                value = rng.normal(0.0, 0.2, shape)
            values.append(value.astype(np.float32))
        if values:
            layer.set_weights(values)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def workdir():
    with tempfile.TemporaryDirectory(prefix="tf_rmi_pretrained_") as path:
        yield path


@pytest.fixture(scope="module")
def deeplab_values():
    return random_original_values(has_factor=True, seed=1)


@pytest.fixture(scope="module")
def deeplab_npy(workdir, deeplab_values):
    return write_npy(deeplab_values, os.path.join(workdir, "ResNet101_train.npy"))


@pytest.fixture
def deeplab_trunk():
    trunk = ResNet101Trunk(has_factor=True)
    trunk.build((None, None, None, 3))
    return trunk


@pytest.fixture(scope="module")
def keras_model():
    model = pretrained.build_keras_resnet101(include_top=True, image_size=64)
    randomize_keras(model, seed=2)
    return model


@pytest.fixture(scope="module")
def keras_h5(workdir, keras_model):
    return write_keras_legacy_h5(
        keras_model, os.path.join(workdir, "resnet101_weights_tf_dim_ordering_tf_kernels.h5"))


def fc1000_variables():
    return (tf.Variable(tf.zeros([1, 1, 2048, 1000])), tf.Variable(tf.zeros([1000])))


def assert_trunk_holds(trunk, values):
    for name, var in trunk.original_variables().items():
        np.testing.assert_array_equal(var.numpy(), values[name], err_msg=name)


# ------------------------------------------------------------------ DeepLab / ResNet


def test_deeplab_checkpoint_round_trip_reports_classifier(workdir, deeplab_values, deeplab_trunk):
    prefix = write_tf1_checkpoint(deeplab_values, os.path.join(workdir, "deeplab.tfmodel"),
                                  "DeepLab", extra={"global_step": np.int64(7)})
    try:
        report = pretrained.load_deeplab_weights(deeplab_trunk, prefix)
    finally:
        for suffix in (".index", ".data-00000-of-00001"):
            os.remove(prefix + suffix)
    assert_trunk_holds(deeplab_trunk, deeplab_values)
    assert len(report.loaded) == 624
    assert report.unused == sorted(["DeepLab/" + n for n in ASPP_NAMES] + ["global_step"])


def test_deeplab_npy_round_trip(deeplab_npy, deeplab_values, deeplab_trunk):
    report = pretrained.load_deeplab_weights(deeplab_trunk, deeplab_npy)
    assert_trunk_holds(deeplab_trunk, deeplab_values)
    assert report.unused == sorted(ASPP_NAMES)


def test_deeplab_factor_changes_the_trunk_output(deeplab_npy, deeplab_trunk):
    pretrained.load_deeplab_weights(deeplab_trunk, deeplab_npy)
    images = tf.random.normal([1, 32, 32, 3], seed=3)
    with_factor = deeplab_trunk.stem(images).numpy()
    deeplab_trunk.group_1.bn.factor.assign([1.0])
    assert np.abs(deeplab_trunk.stem(images).numpy() - with_factor).max() > 1e-3


def test_mismatched_shape_names_variable_and_both_shapes(workdir, deeplab_values, deeplab_trunk):
    bad = dict(deeplab_values)
    bad["group_4_3/block_2/conv/DW"] = np.zeros((3, 3, 256, 128), np.float32)
    path = write_npy(bad, os.path.join(workdir, "mismatched.npy"))
    before = deeplab_trunk.group_1.kernel.numpy()
    try:
        with pytest.raises(PretrainedWeightsError,
                           match=r"group_4_3/block_2/conv/DW: expected \(3, 3, 256, 256\), "
                                 r"found \(3, 3, 256, 128\)"):
            pretrained.load_deeplab_weights(deeplab_trunk, path)
    finally:
        os.remove(path)
    # Nothing was assigned: validation precedes every assignment.
    np.testing.assert_array_equal(deeplab_trunk.group_1.kernel.numpy(), before)


def test_missing_variable_is_listed(workdir, deeplab_values, deeplab_trunk):
    bad = {k: v for k, v in deeplab_values.items() if k != "group_5_2/block_3/bn/variance"}
    path = write_npy(bad, os.path.join(workdir, "missing.npy"))
    try:
        with pytest.raises(PretrainedWeightsError, match="group_5_2/block_3/bn/variance") as err:
            pretrained.load_deeplab_weights(deeplab_trunk, path)
    finally:
        os.remove(path)
    assert err.value.missing == ["group_5_2/block_3/bn/variance"]


def test_truncated_checkpoint_raises_before_assigning(workdir, deeplab_values, deeplab_trunk):
    prefix = write_tf1_checkpoint(deeplab_values, os.path.join(workdir, "cut.tfmodel"), "DeepLab")
    data = prefix + ".data-00000-of-00001"
    os.truncate(data, os.path.getsize(data) // 2)
    before = deeplab_trunk.group_1.kernel.numpy()
    try:
        with pytest.raises(PretrainedWeightsError, match="truncated or corrupt"):
            pretrained.load_deeplab_weights(deeplab_trunk, prefix)
    finally:
        os.remove(data)
        os.remove(prefix + ".index")
    np.testing.assert_array_equal(deeplab_trunk.group_1.kernel.numpy(), before)


def test_truncated_npy_raises(workdir, deeplab_npy, deeplab_trunk):
    path = os.path.join(workdir, "cut.npy")
    with open(deeplab_npy, "rb") as src, open(path, "wb") as dst:
        dst.write(src.read(os.path.getsize(deeplab_npy) // 3))
    try:
        with pytest.raises(PretrainedWeightsError, match="truncated"):
            pretrained.load_deeplab_weights(deeplab_trunk, path)
    finally:
        os.remove(path)


def test_missing_checkpoint_names_the_path(workdir, deeplab_trunk):
    with pytest.raises(PretrainedWeightsError, match="nowhere.tfmodel.index not found"):
        pretrained.load_deeplab_weights(deeplab_trunk, os.path.join(workdir, "nowhere.tfmodel"))


def test_factors_need_a_deeplab_trunk(deeplab_npy):
    trunk = ResNet101Trunk(has_factor=False)
    with pytest.raises(PretrainedWeightsError, match="has_factor=True"):
        pretrained.load_deeplab_weights(trunk, deeplab_npy)


def test_resnet_npy_fills_fc1000_as_a_1x1_conv(workdir):
    values = random_original_values(has_factor=False, seed=4)
    values["fc1000/DW"] = np.random.default_rng(5).normal(size=(2048, 1000)).astype(np.float32)
    values["fc1000/biases"] = np.arange(1000, dtype=np.float32)
    path = write_npy(values, os.path.join(workdir, "ResNet101.npy"))
    trunk, fc1000 = ResNet101Trunk(has_factor=False), fc1000_variables()
    try:
        report = pretrained.load_resnet_weights(trunk, path, fc1000=fc1000)
    finally:
        os.remove(path)
    np.testing.assert_array_equal(fc1000[0].numpy()[0, 0], values["fc1000/DW"])
    np.testing.assert_array_equal(fc1000[1].numpy(), values["fc1000/biases"])
    assert report.unused == [] and len(report.loaded) == 522


def test_tf_resnet_checkpoint_is_the_r_rows_default_and_fills_fc1000(workdir):
    """TF-resnet's npy2tfmodel.py output (`ResNet/...`, fc1000/DW already [1,1,2048,1000])
    through the dispatcher the training uses for weights='resnet'."""
    values = random_original_values(has_factor=False, seed=6)
    values["fc1000/DW"] = np.random.default_rng(7).normal(
        size=(1, 1, 2048, 1000)).astype(np.float32)
    values["fc1000/biases"] = np.arange(1000, dtype=np.float32)
    prefix = write_tf1_checkpoint(values, os.path.join(workdir, "ResNet101_init.tfmodel"),
                                  "ResNet")
    trunk, fc1000 = ResNet101Trunk(has_factor=False), fc1000_variables()
    trunk.build((None, None, None, 3))
    try:
        report = pretrained.load_pretrained(trunk, prefix, "resnet", fc1000=fc1000)
    finally:
        for name in os.listdir(workdir):
            if name.startswith("ResNet101_init.tfmodel"):
                os.remove(os.path.join(workdir, name))
    assert report.source == "resnet" and report.unused == [] and len(report.loaded) == 522
    assert_trunk_holds(trunk, values)
    np.testing.assert_array_equal(fc1000[0].numpy(), values["fc1000/DW"])
    # TF-resnet's model normalises with epsilon 0.001, as our frozen batch norm.
    from tf_rmi.models.trunk import FrozenBatchNorm
    norms = [l for l in trunk._flatten_layers() if isinstance(l, FrozenBatchNorm)]
    assert len(norms) == 104 and {n.epsilon for n in norms} == {1e-3}


# ------------------------------------------------------------------ Keras .h5


def test_keras_h5_import_is_verified_against_keras(keras_h5, keras_model):
    trunk, fc1000 = ResNet101Trunk(has_factor=False), fc1000_variables()
    report = pretrained.load_keras_resnet101_h5(trunk, keras_h5, fc1000=fc1000,
                                                keras_model=keras_model)
    assert report.verified and report.unused == []
    np.testing.assert_array_equal(trunk.group_1.kernel.numpy(),
                                  keras_model.get_layer("conv1_conv").kernel.numpy())
    np.testing.assert_array_equal(fc1000[0].numpy()[0, 0],
                                  keras_model.get_layer("predictions").kernel.numpy())


def test_keras_conv_bias_and_epsilon_fold_into_batch_norm(keras_h5, keras_model):
    trunk = ResNet101Trunk(has_factor=True)
    report = pretrained.load_keras_resnet101_h5(trunk, keras_h5, verify=False)
    assert report.unused == ["predictions/bias", "predictions/kernel"]
    bias = keras_model.get_layer("conv2_block1_2_conv").bias.numpy()
    bn = keras_model.get_layer("conv2_block1_2_bn")
    var = bn.moving_variance.numpy().astype(np.float64)
    ours = trunk.block("group_2_0").block_2.bn
    np.testing.assert_allclose(ours.mean.numpy(), bn.moving_mean.numpy() - bias, rtol=1e-6)
    np.testing.assert_allclose(
        ours.gamma.numpy(), bn.gamma.numpy() * np.sqrt(var + 1e-3) / np.sqrt(var + 1.001e-5),
        rtol=1e-6)
    assert ours.factor.numpy().tolist() == [1.0]


def test_verification_catches_a_wrong_unit(keras_h5, keras_model):
    trunk = ResNet101Trunk(has_factor=False)
    pretrained.load_keras_resnet101_h5(trunk, keras_h5, verify=False)
    kernel = trunk.block("group_4_5").block_2.kernel
    kernel.assign(np.transpose(kernel.numpy(), (1, 0, 2, 3)))  # H and W swapped
    with pytest.raises(ImportVerificationError, match="conv4_block6_2_conv"):
        pretrained.verify_keras_resnet101_import(trunk, keras_model)


def test_keras_h5_with_wrong_shape_names_variable_and_shapes(workdir, keras_model):
    path = write_keras_legacy_h5(
        keras_model, os.path.join(workdir, "bad_shape.h5"),
        replace={"conv3_block2_2_conv/kernel:0": np.zeros((3, 3, 128, 64), np.float32)})
    try:
        with pytest.raises(PretrainedWeightsError,
                           match=r"group_3_1/block_2/conv/DW: expected \(3, 3, 128, 128\), "
                                 r"found \(3, 3, 128, 64\)"):
            pretrained.load_keras_resnet101_h5(ResNet101Trunk(), path)
    finally:
        os.remove(path)


def test_keras_h5_missing_layer_is_named(workdir, keras_model):
    path = write_keras_legacy_h5(keras_model, os.path.join(workdir, "missing.h5"),
                                 skip=("conv4_block7_2_bn",))
    try:
        with pytest.raises(PretrainedWeightsError, match="conv4_block7_2_bn") as err:
            pretrained.load_keras_resnet101_h5(ResNet101Trunk(), path)
    finally:
        os.remove(path)
    assert "group_4_6/block_2/bn/gamma" in err.value.missing


def test_fc1000_needs_the_file_with_top(workdir, keras_model):
    path = write_keras_legacy_h5(keras_model, os.path.join(workdir, "notop.h5"),
                                 skip=("predictions",))
    try:
        with pytest.raises(PretrainedWeightsError, match="_notop file"):
            pretrained.load_keras_resnet101_h5(ResNet101Trunk(), path, fc1000=fc1000_variables())
    finally:
        os.remove(path)


def test_h5_that_is_not_keras_weights_is_rejected(workdir):
    path = os.path.join(workdir, "other.h5")
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=np.zeros(3))
    with pytest.raises(PretrainedWeightsError, match="not a Keras HDF5 weights file"):
        pretrained.load_keras_resnet101_h5(ResNet101Trunk(), path)


def test_load_pretrained_dispatches_on_weights(deeplab_npy, deeplab_trunk):
    report = pretrained.load_pretrained(deeplab_trunk, deeplab_npy, "deeplab")
    assert report.source == "deeplab"
    with pytest.raises(ValueError, match="Unknown weights 'vgg'"):
        pretrained.load_pretrained(deeplab_trunk, deeplab_npy, "vgg")
