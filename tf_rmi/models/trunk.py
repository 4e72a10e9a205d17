"""Visual trunks: the frozen DeepLab/ResNet-101 of the original, and a small CPU trunk.

Both map caffe-preprocessed BGR images `[N, H, W, 3]` float32 to a feature map
`[N, ceil(H/8), ceil(W/8), output_channels]` (output stride 8: 40x40 for 320).

`ResNet101Trunk` reproduces `deeplab_model.DeepLab` / `resnet_model.ResNet(atrous=True)`
of chenxi116/TF-deeplab and chenxi116/TF-resnet up to the final ReLU (`res5c`):
Caffe-style bottlenecks (stride in the first 1x1), TF `SAME` padding, no conv
biases, frozen batch norm with epsilon 1e-3, groups 4 and 5 atrous (rate 2 and 4).
Its variables carry the original names (`original_variables()`), so a TF1
snapshot or a converted `.npy` loads by name. The classifiers are not part of
the trunk: `ResNet/fc1000/{DW,biases}` (ImageNet, 1x1 conv 2048 -> 1000) belongs
to the segmentation model as its visual projection, and DeepLab's ASPP
`fc1_voc12/conv0..3` is not used by RMI.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

# tf.nn.batch_normalization epsilon in both original trunks ("elipson used to be
# 1e-5. Maybe 0.001 solves NaN problem in deeper net.").
BN_EPSILON = 1e-3

# Bottleneck counts per group (groups 2..5) and output widths (conv1, groups 2..5).
RESNET101_UNITS = (3, 4, 23, 3)
RESNET101_FILTERS = (64, 256, 512, 1024, 2048)
# (stride of the group's first block, atrous rate of its convs), groups 2..5.
RESNET101_GROUP_STRIDE_RATE = ((1, 1), (2, 1), (1, 2), (1, 4))
OUTPUT_STRIDE = 8


def _cast_like(variable, x):
    """The variable's value in `x`'s dtype (mixed precision computes in float16/bfloat16)."""
    value = tf.convert_to_tensor(variable)
    return value if value.dtype == x.dtype else tf.cast(value, x.dtype)


@keras.saving.register_keras_serializable(package="tf_rmi")
class FrozenBatchNorm(keras.layers.Layer):
    """Inference-mode batch norm with stored statistics; never updated.

    `y = (x - mean/factor) / sqrt(variance/factor + 1e-3) * gamma + beta`, per channel.
    `factor` (shape [1]) exists only with `has_factor=True`: the DeepLab weights
    keep Caffe's unnormalised moving sums together with Caffe's moving-average
    normaliser, and `deeplab_model._batch_norm` multiplies mean and variance by
    `1/factor` before `tf.nn.batch_normalization`. The ImageNet ResNet weights
    have no factor (TF-resnet's converter asserts it is 1 and drops it).

    Input and output: `[..., channels]`.
    """

    def __init__(self, channels: int, has_factor: bool = False, epsilon: float = BN_EPSILON,
                 **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.channels = int(channels)
        self.has_factor = bool(has_factor)
        self.epsilon = float(epsilon)

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] not in (None, self.channels):
            raise ValueError(f"{self.name}: expects {self.channels} channels, got input "
                             f"shape {tuple(input_shape)}")
        shape = (self.channels,)
        self.gamma = self.add_weight(name="gamma", shape=shape, initializer="ones",
                                     trainable=False)
        self.beta = self.add_weight(name="beta", shape=shape, initializer="zeros",
                                    trainable=False)
        self.mean = self.add_weight(name="mean", shape=shape, initializer="zeros",
                                    trainable=False)
        self.variance = self.add_weight(name="variance", shape=shape, initializer="ones",
                                        trainable=False)
        if self.has_factor:
            self.factor = self.add_weight(name="factor", shape=(1,), initializer="ones",
                                          trainable=False)
        self.built = True

    def call(self, x):
        mean = _cast_like(self.mean, x)
        variance = _cast_like(self.variance, x)
        if self.has_factor:
            # The original computes inv_factor = 1/factor, then scales both.
            inv_factor = 1.0 / _cast_like(self.factor, x)
            mean = inv_factor * mean
            variance = inv_factor * variance
        # Same arithmetic order as tf.nn.batch_normalization.
        scale = tf.math.rsqrt(variance + tf.cast(self.epsilon, x.dtype)) * _cast_like(self.gamma, x)
        return x * scale + (_cast_like(self.beta, x) - mean * scale)

    def named_variables(self) -> dict:
        """`{'gamma': v, 'beta': v, 'mean': v, 'variance': v[, 'factor': v]}`."""
        names = {"beta": self.beta, "gamma": self.gamma, "mean": self.mean,
                 "variance": self.variance}
        if self.has_factor:
            names["factor"] = self.factor
        return names

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, has_factor=self.has_factor, epsilon=self.epsilon)
        return config


@keras.saving.register_keras_serializable(package="tf_rmi")
class ConvBN(keras.layers.Layer):
    """Bias-free conv (TF `SAME`, optional stride or atrous rate) + FrozenBatchNorm.

    `[N, H, W, in_channels] -> [N, ceil(H/stride), ceil(W/stride), out_channels]`.
    Variables are named `<conv_name>/DW` (HWIO) and `<bn_name>/{gamma,beta,mean,variance[,factor]}`
    relative to the unit's scope, as in the original (`conv`/`bn`, or `conv1`/`bn_conv1`
    for the stem).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 rate: int = 1, has_factor: bool = False, conv_name: str = "conv",
                 bn_name: str = "bn", **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        if stride != 1 and rate != 1:
            # The original asserts the same (tf.nn.atrous_conv2d takes no stride).
            raise ValueError(f"{self.name}: stride {stride} with atrous rate {rate}")
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.kernel_size = int(kernel_size)
        self.stride = int(stride)
        self.rate = int(rate)
        self.has_factor = bool(has_factor)
        self.conv_name = conv_name
        self.bn_name = bn_name
        self.bn = FrozenBatchNorm(self.out_channels, has_factor=self.has_factor, name=bn_name,
                                  trainable=False)

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] not in (None, self.in_channels):
            raise ValueError(f"{self.name}: expects {self.in_channels} input channels, got "
                             f"input shape {tuple(input_shape)}")
        k = self.kernel_size
        # Original init: normal with stddev sqrt(2 / (k*k*out)); real weights overwrite it.
        stddev = math.sqrt(2.0 / (k * k * self.out_channels))
        self.kernel = self.add_weight(
            name="DW", shape=(k, k, self.in_channels, self.out_channels),
            initializer=keras.initializers.RandomNormal(stddev=stddev), trainable=False)
        self.bn.build((None, self.out_channels))
        self.built = True

    def convolve(self, x):
        """The conv alone: `tf.nn.conv2d` with `SAME` (TF pads the odd extra pixel after)."""
        # An atrous rate on a 1x1 kernel changes nothing; the original passes it to
        # tf.nn.atrous_conv2d for the 1x1 convs too, which equals a plain conv here.
        dilations = self.rate if self.kernel_size > 1 else 1
        return tf.nn.conv2d(x, _cast_like(self.kernel, x), strides=self.stride,
                            padding="SAME", dilations=dilations)

    def call(self, x):
        return self.bn(self.convolve(x))

    def named_variables(self) -> dict:
        names = {f"{self.conv_name}/DW": self.kernel}
        for key, var in self.bn.named_variables().items():
            names[f"{self.bn_name}/{key}"] = var
        return names

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, out_channels=self.out_channels,
                      kernel_size=self.kernel_size, stride=self.stride, rate=self.rate,
                      has_factor=self.has_factor, conv_name=self.conv_name,
                      bn_name=self.bn_name)
        return config


@keras.saving.register_keras_serializable(package="tf_rmi")
class Bottleneck(keras.layers.Layer):
    """Caffe-style bottleneck residual unit (`_bottleneck_residual` of the original).

    `block_1` 1x1 (carries the stride) -> BN -> ReLU, `block_2` 3x3 (atrous rate)
    -> BN -> ReLU, `block_3` 1x1 -> BN; shortcut `block_add` = 1x1 conv (same stride)
    + BN when `in_channels != out_channels`, else identity; sum, ReLU.
    `[N, H, W, in_channels] -> [N, ceil(H/stride), ceil(W/stride), out_channels]`.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, rate: int = 1,
                 has_factor: bool = False, **kwargs):
        kwargs.setdefault("trainable", False)
        super().__init__(**kwargs)
        self.in_channels = int(in_channels)
        self.out_channels = int(out_channels)
        self.stride = int(stride)
        self.rate = int(rate)
        self.has_factor = bool(has_factor)
        mid = self.out_channels // 4
        common = dict(has_factor=self.has_factor, trainable=False)
        self.block_1 = ConvBN(self.in_channels, mid, 1, stride=self.stride, name="block_1",
                              **common)
        self.block_2 = ConvBN(mid, mid, 3, rate=self.rate, name="block_2", **common)
        self.block_3 = ConvBN(mid, self.out_channels, 1, name="block_3", **common)
        if self.in_channels != self.out_channels:
            self.block_add = ConvBN(self.in_channels, self.out_channels, 1, stride=self.stride,
                                    name="block_add", **common)
        else:
            if self.stride != 1:
                raise ValueError(f"{self.name}: an identity shortcut cannot carry stride "
                                 f"{self.stride}")
            self.block_add = None

    def build(self, input_shape=None):
        self.block_1.build((None, None, None, self.in_channels))
        self.block_2.build((None, None, None, self.block_2.in_channels))
        self.block_3.build((None, None, None, self.block_3.in_channels))
        if self.block_add is not None:
            self.block_add.build((None, None, None, self.in_channels))
        self.built = True

    def call(self, x):
        shortcut = x if self.block_add is None else self.block_add(x)
        y = tf.nn.relu(self.block_1(x))
        y = tf.nn.relu(self.block_2(y))
        y = self.block_3(y)
        return tf.nn.relu(y + shortcut)

    def units(self) -> dict:
        """`{'block_1': ConvBN, 'block_2': ..., 'block_3': ..., ['block_add': ...]}`."""
        units = {"block_1": self.block_1, "block_2": self.block_2, "block_3": self.block_3}
        if self.block_add is not None:
            units["block_add"] = self.block_add
        return units

    def named_variables(self) -> dict:
        names = {}
        for unit_name, unit in self.units().items():
            for key, var in unit.named_variables().items():
                names[f"{unit_name}/{key}"] = var
        return names

    def get_config(self):
        config = super().get_config()
        config.update(in_channels=self.in_channels, out_channels=self.out_channels,
                      stride=self.stride, rate=self.rate, has_factor=self.has_factor)
        return config


class _FeatureMapShape:
    """The static output shape of both trunks (Keras' `compute_output_shape`):
    images [N, H, W, 3] -> [N, ceil(H/8), ceil(W/8), self.output_channels];
    unknown sides stay None."""

    def compute_output_shape(self, input_shape):
        n, h, w = input_shape[0], input_shape[1], input_shape[2]
        ceil8 = lambda s: None if s is None else -(-s // OUTPUT_STRIDE)  # noqa: E731
        return (n, ceil8(h), ceil8(w), self.output_channels)


@keras.saving.register_keras_serializable(package="tf_rmi")
class ResNet101Trunk(_FeatureMapShape, keras.layers.Layer):
    """The original's frozen ResNet-101 at output stride 8, up to `res5c` (final ReLU).

    `call(images [N, H, W, 3]) -> [N, ceil(H/8), ceil(W/8), 2048]` (40x40 for 320).

    Stem `group_1`: conv1 7x7/2 (64) + bn_conv1 + ReLU + max-pool 3x3/2, both TF `SAME`
    (conv1 pads 2 before and 3 after on an even side, the pool 0 and 1).
    Then bottleneck groups `group_<g>_<i>` (g = 2..5, i from 0) with 3, 4, 23, 3 units;
    `group_3_0` has stride 2; groups 4 and 5 have stride 1 and atrous rate 2 and 4.

    Frozen: every variable is non-trainable and stays so (`trainable` is False).
    `has_factor=True` builds DeepLab-style batch norms with a `factor` variable.
    """

    def __init__(self, has_factor: bool = False, **kwargs):
        kwargs["trainable"] = False
        kwargs.setdefault("name", "resnet101_trunk")
        super().__init__(**kwargs)
        self.has_factor = bool(has_factor)
        self.output_channels = RESNET101_FILTERS[-1]
        self.output_stride = OUTPUT_STRIDE
        # Sub-layers are plain attributes named as the original scopes: Keras 3 lists of
        # layers are not tracked by tf.train.Checkpoint, attributes are.
        self.group_1 = ConvBN(3, RESNET101_FILTERS[0], 7, stride=2, has_factor=self.has_factor,
                              conv_name="conv1", bn_name="bn_conv1", name="group_1",
                              trainable=False)
        block_names = []
        in_channels = RESNET101_FILTERS[0]
        for group_index, (count, out_channels, (stride, rate)) in enumerate(
                zip(RESNET101_UNITS, RESNET101_FILTERS[1:], RESNET101_GROUP_STRIDE_RATE)):
            group = group_index + 2
            for i in range(count):
                name = f"group_{group}_{i}"
                setattr(self, name, Bottleneck(
                    in_channels, out_channels, stride=stride if i == 0 else 1, rate=rate,
                    has_factor=self.has_factor, name=name, trainable=False))
                block_names.append(name)
                in_channels = out_channels
        self.block_names = tuple(block_names)

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] not in (None, 3):
            raise ValueError(f"ResNet101Trunk takes 3-channel BGR images, got input shape "
                             f"{tuple(input_shape)}")
        self.group_1.build((None, None, None, 3))
        for block in self.blocks:
            block.build((None, None, None, block.in_channels))
        self.built = True

    def stem(self, images):
        """`group_1`: conv1 + bn_conv1 + ReLU + 3x3/2 max-pool. `[N,H,W,3] -> [N,ceil(H/4),ceil(W/4),64]`."""
        x = tf.nn.relu(self.group_1(images))
        return tf.nn.max_pool2d(x, ksize=3, strides=2, padding="SAME")

    def call(self, images):
        x = self.stem(images)
        for block in self.blocks:
            x = block(x)
        # The original's `group_last` applies one more ReLU; the last unit already ends
        # with one, so the output is unchanged.
        return x

    @property
    def blocks(self) -> list:
        """The 33 bottleneck units in order (group_2_0 ... group_5_2)."""
        return [getattr(self, name) for name in self.block_names]

    def block(self, name: str) -> Bottleneck:
        """The bottleneck unit named `group_<g>_<i>`."""
        if name not in self.block_names:
            raise KeyError(f"No unit {name!r}; units are group_2_0..group_5_2")
        return getattr(self, name)

    def original_variables(self) -> dict:
        """`{original name without 'DeepLab/' or 'ResNet/': variable}` (Keras variables backed
        by tf.Variable; `.assign`, `.numpy()`, `.shape` as usual), e.g. `group_1/conv1/DW`,
        `group_1/bn_conv1/gamma`, `group_2_0/block_1/conv/DW`, `group_2_0/block_add/bn/mean`,
        and `.../factor` when built with `has_factor`: 104 conv + BN units, 520
        variables (624 with factors)."""
        if not self.built:
            self.build((None, None, None, 3))
        names = {f"group_1/{key}": var for key, var in self.group_1.named_variables().items()}
        for block in self.blocks:
            for key, var in block.named_variables().items():
                names[f"{block.name}/{key}"] = var
        return names

    def get_config(self):
        config = super().get_config()
        config.pop("trainable", None)
        config.update(has_factor=self.has_factor)
        return config


@keras.saving.register_keras_serializable(package="tf_rmi")
class SmallTrunk(_FeatureMapShape, keras.layers.Layer):
    """A small trainable trunk with the same interface, for CPU work and the demo.

    conv 3x3/2 (width) -> 3x3/2 (2w) -> 3x3 (2w) -> 3x3/2 (4w) -> 3x3 rate 2 (4w)
    -> 3x3 rate 4 (4w) -> 1x1 (8w), each with bias and ReLU, TF `SAME` padding;
    Glorot-uniform kernels, zero biases (the original's initialisers for trained
    convs). The two dilated convs at stride 8 give each cell context well
    beyond its object (relations such as "left of the green triangle" need it).
    `call(images [N, H, W, 3]) -> [N, ceil(H/8), ceil(W/8), 8*width]`.
    No pretrained weights exist for it: `original_variables()` is empty.

    It has no counterpart in the original (whose trunk is frozen and
    pretrained), so two things the original does not need are options:
    `input_scale` multiplies the Caffe-preprocessed input (values of +-128;
    1/128 brings them to about +-1), and `norm="group"` puts a group
    normalisation (`norm_groups` groups) between each conv and its ReLU, so a
    trunk trained from scratch keeps well-scaled activations; it is
    per-sample, so training and inference compute the same function.
    `residual=True` adds identity shortcuts around the stride-1 convs whose
    width does not change (conv3, conv5, conv6), so each cell keeps its own
    features beside the dilated context instead of a mix dominated by its
    neighbours. `aligned=True` pads the stride-2 convs symmetrically, so cell
    k of the stride-8 map is centred on pixel 8k: the pixel its training target
    samples (TF1 `resize_bilinear` of the mask reads pixel 8k) and where TF1
    upsampling puts its logit. With TF `SAME` padding (the ResNet's, and the
    default) cell k is centred on pixel 8k+7, so the net must learn a shift of
    7 pixels before it can localise anything. The defaults (1.0, "none",
    False, False) are the plain trunk.

    `standardize=True` makes the last conv (conv7) linear and standardises its
    output per image and channel over the cells (zero mean, unit variance;
    instance normalisation without learned scale). Without it the trunk's
    output is a ReLU map with a large common component, so after the head's
    l2-normalisation the visual vectors of all cells point almost the same way
    (mean pairwise cosine 0.83 at initialisation on the demo's images) and the
    head's first-order gradient cannot tell cells apart: the word can only
    raise or lower the whole map, and training sits at an "objectness" plateau
    for thousands of steps. Centred per image, the cells' vectors start
    spread out.

    `context=True` appends, to every cell's C output channels, four more
    C-channel blocks: the maximum of the (ReLU'd) output over the cells
    strictly to its left, right, above and below (0 where there are none), so
    output_channels = 5 * 8 * width. A 1x1 head cannot look at other cells;
    with these a cell can tell "a red object lies to my left", which extremes
    ("the leftmost circle"), ordinals and relations ("left of the blue star")
    need and a 7-conv trunk's receptive field does not reliably give.
    """

    NORMS = ("none", "group")

    def __init__(self, width: int = 32, input_scale: float = 1.0, norm: str = "none",
                 norm_groups: int = 4, residual: bool = False, aligned: bool = False,
                 standardize: bool = False, context: bool = False, **kwargs):
        kwargs.setdefault("name", "small_trunk")
        super().__init__(**kwargs)
        if int(width) < 1:
            raise ValueError(f"small_trunk_width must be >= 1, got {width}")
        if norm not in self.NORMS:
            raise ValueError(f"small_trunk_norm must be one of {self.NORMS}, got {norm!r}")
        if not float(input_scale) > 0:
            raise ValueError(f"small_trunk_input_scale must be positive, got {input_scale}")
        self.width = int(width)
        self.input_scale = float(input_scale)
        self.norm = norm
        self.norm_groups = int(norm_groups)
        self.residual = bool(residual)
        self.aligned = bool(aligned)
        self.standardize = bool(standardize)
        self.context = bool(context)
        self.output_channels = 8 * self.width * (5 if self.context else 1)
        self.output_stride = OUTPUT_STRIDE
        w = self.width
        # (name, kernel size, stride, dilation, output channels)
        self._specs = (("conv1", 3, 2, 1, w), ("conv2", 3, 2, 1, 2 * w), ("conv3", 3, 1, 1, 2 * w),
                       ("conv4", 3, 2, 1, 4 * w), ("conv5", 3, 1, 2, 4 * w),
                       ("conv6", 3, 1, 4, 4 * w), ("conv7", 1, 1, 1, 8 * w))
        if norm == "group":
            for _, _, _, _, out in self._specs:
                if out % self.norm_groups:
                    raise ValueError(f"small_trunk_norm_groups={self.norm_groups} must divide "
                                     f"every conv width ({[s[4] for s in self._specs]})")
        for name, k, s, d, out in self._specs:
            # aligned: a stride-2 conv pads one pixel on every side (VALID after
            # an explicit pad), so output cell i is centred on input 2i, not 2i+1.
            padding = "valid" if self.aligned and s == 2 else "same"
            linear = norm == "group" or (self.standardize and name == "conv7")
            setattr(self, name, keras.layers.Conv2D(
                out, k, strides=s, dilation_rate=d, padding=padding, name=name,
                activation=None if linear else "relu",
                kernel_initializer="glorot_uniform", bias_initializer="zeros"))
            if norm == "group":
                setattr(self, f"{name}_gn", keras.layers.GroupNormalization(
                    groups=self.norm_groups, epsilon=1e-5, name=f"{name}_gn"))

    @property
    def convs(self) -> list:
        return [getattr(self, spec[0]) for spec in self._specs]

    @property
    def norms(self) -> list:
        """The group-norm layers (one per conv), or [] for norm="none"."""
        if self.norm != "group":
            return []
        return [getattr(self, f"{spec[0]}_gn") for spec in self._specs]

    def build(self, input_shape=None):
        if input_shape is not None and input_shape[-1] not in (None, 3):
            raise ValueError(f"SmallTrunk takes 3-channel BGR images, got input shape "
                             f"{tuple(input_shape)}")
        channels = 3
        norms = self.norms or [None] * len(self._specs)
        for conv, gn, (_, _, _, _, out) in zip(self.convs, norms, self._specs):
            conv.build((None, None, None, channels))
            if gn is not None:
                gn.build((None, None, None, out))
            channels = out
        self.built = True

    def call(self, images):
        x = images
        if self.input_scale != 1.0:
            x = x * tf.cast(self.input_scale, x.dtype)
        norms = self.norms or [None] * len(self._specs)
        for conv, gn, (_, k, stride, _, out) in zip(self.convs, norms, self._specs):
            if self.aligned and stride == 2:
                half = (k - 1) // 2
                x = tf.pad(x, [[0, 0], [half, half], [half, half], [0, 0]])
            y = conv(x)
            last = conv is self.conv7
            if gn is not None:
                y = gn(y) if (last and self.standardize) else tf.nn.relu(gn(y))
            # Residual: a stride-1 conv that keeps the width adds to its input, so
            # each cell keeps its own (local) features beside the dilated context.
            x = x + y if self.residual and stride == 1 and x.shape[-1] == out else y
        if self.standardize:
            mean, variance = tf.nn.moments(x, axes=[1, 2], keepdims=True)
            x = (x - mean) * tf.math.rsqrt(variance + tf.cast(1e-5, x.dtype))
        if self.context:
            x = tf.concat([x] + directional_max(tf.nn.relu(x)), axis=-1)
        return x

    def original_variables(self) -> dict:
        """Empty: the small trunk has no original counterpart."""
        return {}

    def get_config(self):
        config = super().get_config()
        config.update(width=self.width, input_scale=self.input_scale, norm=self.norm,
                      norm_groups=self.norm_groups, residual=self.residual,
                      aligned=self.aligned, standardize=self.standardize,
                      context=self.context)
        return config


def _shift(x, k: int, axis: int, forward: bool):
    """x shifted by k cells along `axis` (1 = rows, 2 = columns), zeros coming in:
    forward moves content towards higher indices."""
    size = tf.shape(x)[axis]
    pad = [[0, 0]] * 4
    pad[axis] = [k, 0] if forward else [0, k]
    padded = tf.pad(x, pad)
    begin = [0, 0, 0, 0]
    if not forward:
        begin[axis] = k
    sizes = [-1, -1, -1, -1]
    sizes[axis] = size
    return tf.slice(padded, begin, sizes)


def directional_max(x) -> list:
    """[left, right, above, below] for x [N, h, w, C] >= 0: at each cell the
    maximum of x over the cells strictly to its left (same row, lower column),
    right, above and below; 0 where there is no such cell. Cumulative maxima by
    doubling shifts (1, 2, 4, ...): log2(size) maxima per direction, unrolled
    for a static size, a tf.while_loop over the dynamic one otherwise."""
    out = []
    for axis, forward in ((2, True), (2, False), (1, True), (1, False)):
        m = _shift(x, 1, axis, forward)
        size = x.shape[axis]
        if size is not None:
            k = 1
            while k < size:
                m = tf.maximum(m, _shift(m, k, axis, forward))
                k *= 2
        else:
            _, m = tf.while_loop(
                lambda k, m: k < tf.shape(x)[axis],
                lambda k, m, axis=axis, forward=forward: (
                    k * 2, tf.maximum(m, _shift(m, k, axis, forward))),
                (tf.constant(1), m))
        out.append(m)
    return out


def build_trunk(model_cfg) -> keras.layers.Layer:
    """The trunk `model_cfg` asks for, built (variables created).

    `trunk='resnet101'` -> `ResNet101Trunk(has_factor=(weights == 'deeplab'))`;
    `trunk='small'` -> `SmallTrunk(width=small_trunk_width)`.
    """
    if model_cfg.trunk == "resnet101":
        if model_cfg.weights not in ("deeplab", "resnet"):
            raise ValueError(f"Unknown weights {model_cfg.weights!r}: use 'deeplab' or 'resnet'")
        trunk = ResNet101Trunk(has_factor=model_cfg.weights == "deeplab")
    elif model_cfg.trunk == "small":
        trunk = SmallTrunk(width=model_cfg.small_trunk_width,
                           input_scale=model_cfg.small_trunk_input_scale,
                           norm=model_cfg.small_trunk_norm,
                           norm_groups=model_cfg.small_trunk_norm_groups,
                           residual=model_cfg.small_trunk_residual,
                           aligned=model_cfg.small_trunk_aligned,
                           standardize=model_cfg.small_trunk_standardize,
                           context=model_cfg.small_trunk_context)
    else:
        raise ValueError(f"Unknown trunk {model_cfg.trunk!r}: use 'resnet101' or 'small'")
    trunk.build((None, None, None, 3))
    return trunk
