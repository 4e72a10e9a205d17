"""Trunks: frozen batch norm, TF SAME padding, the ResNet-101 graph against a reference."""
import numpy as np
import pytest
import tensorflow as tf

from tf_rmi.config import ModelConfig
from tf_rmi.models import trunk as trunk_lib
from tf_rmi.models.trunk import (ConvBN, FrozenBatchNorm, ResNet101Trunk, SmallTrunk,
                                 build_trunk)


@pytest.fixture(scope="module")
def deeplab_trunk():
    """A DeepLab-style trunk (with factors) holding random, well-conditioned values."""
    trunk = ResNet101Trunk(has_factor=True)
    randomize(trunk, seed=0)
    return trunk


def randomize(trunk, seed):
    rng = np.random.default_rng(seed)
    for name, var in trunk.original_variables().items():
        shape = tuple(var.shape)
        if name.endswith("/DW"):
            fan_in = np.prod(shape[:3])
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif name.endswith("/gamma"):
            value = rng.uniform(0.5, 1.0, shape)
        elif name.endswith("/beta") or name.endswith("/mean"):
            value = rng.normal(0.0, 0.1, shape)
        elif name.endswith("/variance"):
            value = rng.uniform(0.5, 2.0, shape)
        else:  # factor: mean and variance are stored multiplied by it
            value = rng.uniform(0.5, 3.0, shape)
        var.assign(value.astype(np.float32))


def reference_forward(values, images):
    """The original's graph written out from the name -> array dict (TF1 ops as it used them)."""

    def conv(x, name, stride=1, rate=1):
        kernel = values[name + "/DW"]
        if rate == 1:
            return tf.nn.conv2d(x, kernel, [1, stride, stride, 1], padding="SAME")
        return tf.nn.atrous_conv2d(x, kernel, rate=rate, padding="SAME")

    def bn(x, name):
        factor = values.get(name + "/factor", np.ones([1], np.float32))
        return tf.nn.batch_normalization(x, values[name + "/mean"] / factor,
                                         values[name + "/variance"] / factor,
                                         values[name + "/beta"], values[name + "/gamma"], 1e-3)

    def unit(x, scope, in_f, out_f, stride, rate):
        y = tf.nn.relu(bn(conv(x, scope + "/block_1/conv", stride, rate), scope + "/block_1/bn"))
        y = tf.nn.relu(bn(conv(y, scope + "/block_2/conv", 1, rate), scope + "/block_2/bn"))
        y = bn(conv(y, scope + "/block_3/conv", 1, rate), scope + "/block_3/bn")
        if in_f != out_f:
            x = bn(conv(x, scope + "/block_add/conv", stride, rate), scope + "/block_add/bn")
        return tf.nn.relu(y + x)

    x = tf.nn.relu(bn(conv(images, "group_1/conv1", 2), "group_1/bn_conv1"))
    x = tf.nn.max_pool(x, [1, 3, 3, 1], [1, 2, 2, 1], padding="SAME")
    filters = [64, 256, 512, 1024, 2048]
    for g, (count, stride, rate) in enumerate(zip([3, 4, 23, 3], [1, 2, 1, 1], [1, 1, 2, 4])):
        for i in range(count):
            in_f = filters[g] if i == 0 else filters[g + 1]
            x = unit(x, f"group_{g + 2}_{i}", in_f, filters[g + 1], stride if i == 0 else 1, rate)
    return tf.nn.relu(x)


def test_frozen_batch_norm_divides_statistics_by_factor():
    layer = FrozenBatchNorm(3, has_factor=True)
    layer.build((None, 3))
    gamma, beta = np.array([1.0, 2.0, 0.5]), np.array([0.1, -0.2, 0.3])
    mean, variance = np.array([4.0, -2.0, 1.0]), np.array([2.0, 8.0, 0.4])
    for var, value in ((layer.gamma, gamma), (layer.beta, beta), (layer.mean, mean),
                       (layer.variance, variance), (layer.factor, [2.0])):
        var.assign(np.asarray(value, np.float32))
    x = np.array([[1.0, -3.0, 0.7], [0.0, 2.0, -1.0]], np.float32)
    expected = (x - mean / 2.0) / np.sqrt(variance / 2.0 + 1e-3) * gamma + beta
    np.testing.assert_allclose(layer(x).numpy(), expected, rtol=1e-5, atol=1e-6)


def test_frozen_batch_norm_without_factor_uses_epsilon_1e3():
    layer = FrozenBatchNorm(1)
    layer.build((None, 1))
    layer.variance.assign([1e-3])
    assert not hasattr(layer, "factor")
    out = layer(np.array([[1.0]], np.float32)).numpy()
    np.testing.assert_allclose(out, [[1.0 / np.sqrt(2e-3)]], rtol=1e-5)


def test_conv1_same_pads_two_before_three_after():
    trunk = ResNet101Trunk()
    trunk.build((None, None, None, 3))
    images = tf.random.normal([1, 16, 16, 3], seed=1)
    ours = trunk.group_1.convolve(images).numpy()
    kernel = trunk.group_1.kernel
    explicit = tf.nn.conv2d(tf.pad(images, [[0, 0], [2, 3], [2, 3], [0, 0]]), kernel, 2, "VALID")
    symmetric = tf.nn.conv2d(tf.pad(images, [[0, 0], [3, 3], [3, 3], [0, 0]]), kernel, 2, "VALID")
    assert ours.shape == (1, 8, 8, 64)
    np.testing.assert_allclose(ours, explicit.numpy(), rtol=1e-5, atol=1e-5)
    assert np.abs(ours - symmetric.numpy()).max() > 1e-2


def test_stem_max_pool_pads_zero_before_one_after():
    trunk = ResNet101Trunk()
    trunk.build((None, None, None, 3))
    images = tf.random.normal([1, 16, 16, 3], seed=2)
    activated = tf.nn.relu(trunk.group_1(images))  # [1, 8, 8, 64]
    padded = tf.pad(activated, [[0, 0], [0, 1], [0, 1], [0, 0]])  # >= 0, so 0-padding is neutral
    expected = tf.nn.max_pool2d(padded, 3, 2, "VALID")
    np.testing.assert_allclose(trunk.stem(images).numpy(), expected.numpy(), rtol=1e-6)


def test_atrous_conv_matches_tf1_atrous_conv2d():
    unit = ConvBN(4, 5, 3, rate=2)
    unit.build((None, None, None, 4))
    x = tf.random.normal([1, 9, 9, 4], seed=3)
    expected = tf.nn.atrous_conv2d(x, tf.convert_to_tensor(unit.kernel), rate=2, padding="SAME")
    np.testing.assert_allclose(unit.convolve(x).numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_resnet101_matches_reference_graph_by_name(deeplab_trunk):
    values = {k: v.numpy() for k, v in deeplab_trunk.original_variables().items()}
    images = tf.random.normal([1, 48, 40, 3], seed=4) * 50.0
    ours = deeplab_trunk(images).numpy()
    expected = reference_forward(values, images).numpy()
    assert ours.shape == (1, 6, 5, 2048)
    np.testing.assert_allclose(ours, expected, rtol=1e-3, atol=1e-3 * np.abs(expected).max())


def test_group_3_first_unit_carries_stride_in_first_1x1_and_shortcut(deeplab_trunk):
    unit = deeplab_trunk.block("group_3_0")
    assert (unit.block_1.stride, unit.block_2.stride, unit.block_add.stride) == (2, 1, 2)
    x = tf.random.normal([1, 10, 10, 256], seed=5)
    assert unit(x).shape == (1, 5, 5, 512)


def test_dilation_only_in_groups_4_and_5(deeplab_trunk):
    rates = {name: deeplab_trunk.block(name).block_2.rate
             for name in ("group_2_2", "group_3_3", "group_4_0", "group_4_22", "group_5_0")}
    assert rates == {"group_2_2": 1, "group_3_3": 1, "group_4_0": 2, "group_4_22": 2,
                     "group_5_0": 4}


def test_original_variable_names_and_shapes():
    names = ResNet101Trunk(has_factor=False).original_variables()
    assert len(names) == 520  # 104 conv+bn units x (DW + 4 bn statistics)
    assert tuple(names["group_1/conv1/DW"].shape) == (7, 7, 3, 64)
    assert tuple(names["group_2_0/block_add/conv/DW"].shape) == (1, 1, 64, 256)
    assert tuple(names["group_4_22/block_2/conv/DW"].shape) == (3, 3, 256, 256)
    assert tuple(names["group_5_2/block_3/bn/variance"].shape) == (2048,)
    assert "group_3_1/block_add/conv/DW" not in names
    assert not any(name.endswith("/factor") for name in names)


def test_deeplab_trunk_has_one_factor_per_batch_norm(deeplab_trunk):
    names = deeplab_trunk.original_variables()
    factors = [name for name in names if name.endswith("/factor")]
    assert len(names) == 624 and len(factors) == 104
    assert tuple(names["group_1/bn_conv1/factor"].shape) == (1,)


def test_resnet_trunk_stays_frozen(deeplab_trunk):
    assert deeplab_trunk.trainable_variables == []
    deeplab_trunk.trainable = True
    try:
        assert deeplab_trunk.trainable_variables == []
    finally:
        deeplab_trunk.trainable = False


def test_checkpoint_tracks_every_trunk_variable(tmp_path):
    trunk = ResNet101Trunk()
    trunk.build((None, None, None, 3))
    prefix = tf.train.Checkpoint(trunk=trunk).write(str(tmp_path / "ckpt"))
    stored = [name for name, _ in tf.train.list_variables(prefix)
              if name.endswith("VARIABLE_VALUE")]
    assert len(stored) == len(trunk.original_variables())


@pytest.mark.paper_size
def test_resnet101_output_at_paper_size():
    trunk = build_trunk(ModelConfig(trunk="resnet101", weights="deeplab"))
    out = trunk(tf.zeros([1, 320, 320, 3]))
    assert out.shape == (1, 40, 40, 2048)
    assert trunk.output_channels == 2048


def test_small_trunk_output_stride_and_width():
    trunk = build_trunk(ModelConfig(trunk="small", small_trunk_width=4))
    assert isinstance(trunk, SmallTrunk)
    assert trunk(tf.zeros([2, 64, 60, 3])).shape == (2, 8, 8, 32)
    assert trunk(tf.zeros([1, 65, 17, 3])).shape == (1, 9, 3, 32)
    assert trunk.output_channels == 32


def test_small_trunk_is_trainable_and_has_no_original_names():
    trunk = build_trunk(ModelConfig(trunk="small", small_trunk_width=4))
    assert len(trunk.trainable_variables) == 14  # seven kernels, seven biases
    assert trunk.original_variables() == {}


def test_build_trunk_picks_factor_from_weights():
    assert build_trunk(ModelConfig(weights="deeplab")).has_factor
    assert not build_trunk(ModelConfig(weights="resnet")).has_factor


def test_build_trunk_rejects_unknown_trunk():
    with pytest.raises(ValueError, match="Unknown trunk 'vgg'"):
        build_trunk(ModelConfig(trunk="vgg"))


@pytest.mark.parametrize("layer", [
    FrozenBatchNorm(8, has_factor=True), ConvBN(3, 4, 3, rate=2, bn_name="bn_x"),
    trunk_lib.Bottleneck(8, 16, stride=2), ResNet101Trunk(has_factor=True), SmallTrunk(3)])
def test_get_config_round_trip(layer):
    clone = type(layer).from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_small_trunk_input_scale_multiplies_the_input():
    import numpy as np

    plain = build_trunk(ModelConfig(trunk="small", small_trunk_width=4))
    scaled = build_trunk(ModelConfig(trunk="small", small_trunk_width=4,
                                     small_trunk_input_scale=1 / 128))
    scaled.set_weights(plain.get_weights())
    x = np.random.default_rng(0).normal(0, 60, (1, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(scaled(x).numpy(), plain(x / 128).numpy(), rtol=1e-5, atol=1e-6)


def test_small_trunk_group_norm_is_per_sample_and_round_trips():
    import numpy as np
    from tf_rmi.models.trunk import SmallTrunk

    trunk = build_trunk(ModelConfig(trunk="small", small_trunk_width=4, small_trunk_norm="group"))
    assert len(trunk.norms) == 7 and len(trunk.trainable_variables) == 7 * 4
    x = np.random.default_rng(1).normal(0, 60, (3, 32, 32, 3)).astype("float32")
    together = trunk(x).numpy()
    # Batch-independent: the same output alone as inside a batch (no batch statistics).
    np.testing.assert_allclose(trunk(x[1:2]).numpy()[0], together[1], rtol=1e-5, atol=1e-5)
    assert together.shape == (3, 4, 4, 32) and together.min() >= 0
    clone = SmallTrunk.from_config(trunk.get_config())
    clone.build((None, None, None, 3))
    clone.set_weights(trunk.get_weights())
    np.testing.assert_allclose(clone(x).numpy(), together, rtol=1e-6)


def test_small_trunk_rejects_unknown_norm_and_groups_that_do_not_divide():
    from tf_rmi.models.trunk import SmallTrunk

    with pytest.raises(ValueError, match="small_trunk_norm must be one of"):
        SmallTrunk(width=4, norm="batch")
    with pytest.raises(ValueError, match="must divide"):
        SmallTrunk(width=3, norm="group", norm_groups=2)


def test_small_trunk_residual_adds_the_input_of_width_keeping_convs():
    import numpy as np

    plain = build_trunk(ModelConfig(trunk="small", small_trunk_width=4))
    residual = build_trunk(ModelConfig(trunk="small", small_trunk_width=4,
                                       small_trunk_residual=True))
    residual.set_weights(plain.get_weights())
    x = np.random.default_rng(2).normal(0, 60, (1, 32, 32, 3)).astype("float32")
    # Same variables, other function: conv3, conv5 and conv6 get shortcuts.
    assert len(residual.trainable_variables) == len(plain.trainable_variables)
    expected = x
    for conv, (_, _, stride, _, out) in zip(plain.convs, plain._specs):
        y = conv(expected)
        expected = expected + y if stride == 1 and expected.shape[-1] == out else y
    np.testing.assert_allclose(residual(x).numpy(), expected.numpy(), rtol=1e-5, atol=1e-4)
    assert residual.get_config()["residual"] is True


def test_small_trunk_standardize_centres_each_image_and_channel_over_the_cells():
    import numpy as np
    from tf_rmi.models.trunk import SmallTrunk

    plain = build_trunk(ModelConfig(trunk="small", small_trunk_width=4))
    std = build_trunk(ModelConfig(trunk="small", small_trunk_width=4,
                                  small_trunk_standardize=True))
    std.set_weights(plain.get_weights())  # same variables: only the function changes
    x = np.random.default_rng(3).normal(0, 60, (2, 64, 64, 3)).astype("float32")
    out = std(x).numpy()
    np.testing.assert_allclose(out.mean(axis=(1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(out.std(axis=(1, 2)), 1, atol=1e-2)
    assert out.min() < 0  # conv7 is linear: no ReLU before the standardisation
    # conv7's pre-activation, standardised by hand, is what comes out.
    h = x
    for conv in plain.convs[:-1]:
        h = conv(h)
    pre = tf.nn.conv2d(h, std.conv7.kernel, 1, "SAME") + std.conv7.bias
    pre = pre.numpy()
    expected = (pre - pre.mean(axis=(1, 2), keepdims=True)) / np.sqrt(
        pre.var(axis=(1, 2), keepdims=True) + 1e-5)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-4)
    # Per image: an image alone gives what it gives inside a batch.
    np.testing.assert_allclose(std(x[1:]).numpy()[0], out[1], rtol=1e-5, atol=1e-5)
    clone = SmallTrunk.from_config(std.get_config())
    assert clone.standardize and clone.get_config() == std.get_config()


def test_directional_max_is_the_maximum_over_the_cells_strictly_on_each_side():
    import numpy as np
    from tf_rmi.models.trunk import directional_max

    x = np.random.default_rng(4).uniform(0, 1, (2, 5, 7, 3)).astype("float32")
    left, right, above, below = [m.numpy() for m in directional_max(tf.constant(x))]
    for i in range(5):
        for j in range(7):
            np.testing.assert_allclose(left[:, i, j], x[:, i, :j].max(1) if j else 0, rtol=0)
            np.testing.assert_allclose(right[:, i, j], x[:, i, j + 1:].max(1) if j < 6 else 0)
            np.testing.assert_allclose(above[:, i, j], x[:, :i, j].max(1) if i else 0)
            np.testing.assert_allclose(below[:, i, j], x[:, i + 1:, j].max(1) if i < 4 else 0)


def test_small_trunk_context_appends_four_directional_blocks():
    import numpy as np
    from tf_rmi.models.trunk import SmallTrunk, directional_max

    trunk = build_trunk(ModelConfig(trunk="small", small_trunk_width=4, small_trunk_standardize=True,
                                    small_trunk_context=True))
    assert trunk.output_channels == 5 * 32
    x = np.random.default_rng(5).normal(0, 60, (1, 64, 48, 3)).astype("float32")
    out = trunk(x).numpy()
    assert out.shape == (1, 8, 6, 160)
    own = out[..., :32]
    for k, m in enumerate(directional_max(tf.nn.relu(own))):
        np.testing.assert_allclose(out[..., 32 * (k + 1):32 * (k + 2)], m.numpy(), rtol=1e-6)
    assert SmallTrunk.from_config(trunk.get_config()).context


def test_directional_max_with_unknown_spatial_sizes_covers_every_cell():
    import numpy as np
    from tf_rmi.models.trunk import directional_max

    x = np.zeros((1, 3, 70, 1), "float32")
    x[0, 1, 0, 0] = 1.0  # only the first column of row 1 is set
    fn = tf.function(lambda t: directional_max(t),
                     input_signature=[tf.TensorSpec([None, None, None, 1], tf.float32)])
    left = fn(tf.constant(x))[0].numpy()
    np.testing.assert_array_equal(left[0, 1, 1:, 0], 1.0)  # 69 cells away included
    assert left[0, 1, 0, 0] == 0 and left[0, [0, 2]].max() == 0
