"""Pretrained trunk weights for new training, imported into a `ResNet101Trunk`.

Sources:
- DeepLab-v2 ResNet-101 (VOC12), as chenxi116/TF-deeplab converts it: a TF1
  checkpoint with variables `DeepLab/group_1/conv1/DW`, ... (`npy2tfmodel.py`), or
  the `.npy` it starts from (`caffemodel2npy.py`: `np.save` of a flat dict keyed
  `group_1/conv1/DW`, ... without the scope, batch norms with `factor`).
  The ASPP classifier `fc1_voc12/...` is not used and is reported as unused.
- The ImageNet ResNet-101 of chenxi116/TF-resnet in the same two forms
  (`ResNet/...`; no factor; `fc1000/{DW,biases}` is the classifier):
  `ResNet101_init.tfmodel`, the file the original's R rows start from and the
  default of the R experiment configs.
- Keras Applications ResNet101 ImageNet weights (an alternative for the R rows,
  not the original's file)
  (`resnet101_weights_tf_dim_ordering_tf_kernels[_notop].h5`), whose conv biases
  and batch-norm epsilon are folded into our bias-free conv + frozen BN units; the
  import ends by checking our units against Keras' own layers on the same input.

Every loader validates ALL names and shapes before assigning anything, raises
`PretrainedWeightsError` naming each missing or mismatched variable (with the
expected and found shapes), and returns an `ImportReport` listing what it loaded
and which entries of the file it did not use.

This module also owns the name-based conversion both importers share (public
for `tf_rmi.models.weights`, which imports whole original snapshots):
`checkpoint_entries(path)` lists a checkpoint's tensors as `TensorEntry`s
without reading them, and `validate_and_assign(targets, entries, ...)` checks
every name, shape and value before assigning any.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Callable, Optional, Sequence

import numpy as np
import tensorflow as tf

# Bottleneck units per group; Keras' stages conv2..conv5 are our groups 2..5.
from tf_rmi.models.trunk import RESNET101_UNITS

# The epsilon of keras.applications.resnet's BatchNormalization layers.
KERAS_RESNET_BN_EPSILON = 1.001e-5
FC1000_SHAPES = ((1, 1, 2048, 1000), (1000,))


class PretrainedWeightsError(ValueError):
    """A weight file that cannot be imported: unreadable, incomplete or mismatched.

    Attributes: `path`, `missing` (names the trunk needs but the file lacks),
    `mismatched` (`(name, expected_shape, found_shape)` triples).
    """

    def __init__(self, message: str, path: str = "", missing: Sequence[str] = (),
                 mismatched: Sequence[tuple] = ()):
        super().__init__(message)
        self.path = path
        self.missing = list(missing)
        self.mismatched = list(mismatched)


class ImportVerificationError(PretrainedWeightsError):
    """The imported trunk does not compute what the source model computes."""


@dataclasses.dataclass
class ImportReport:
    """What an import did. `loaded` and `unused` are sorted names as in the source file."""

    source: str  # "deeplab", "resnet" or "keras_resnet101"
    path: str
    loaded: list
    unused: list
    verified: bool = False

    def summary(self) -> str:
        text = (f"Imported {len(self.loaded)} {self.source} tensors from {self.path}; "
                f"{len(self.unused)} unused")
        if self.unused:
            shown = ", ".join(self.unused[:8]) + (" ..." if len(self.unused) > 8 else "")
            text += f" ({shown})"
        return text + ("; outputs verified against the source model" if self.verified else "")


@dataclasses.dataclass
class TensorEntry:
    """One tensor of a source file: its `shape` (a tuple, e.g. (1, 1, 2048, 1000)) and
    `read() -> np.ndarray` of that shape, called only once every name and shape
    has been checked (a large file is not read to find a bad name)."""

    shape: tuple
    read: Callable[[], np.ndarray]


# --------------------------------------------------------------------------- helpers


def _list_names(names, limit=12) -> str:
    names = list(names)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _check_fc1000(fc1000) -> None:
    kernel, bias = fc1000
    found = (tuple(kernel.shape), tuple(bias.shape))
    if found != FC1000_SHAPES:
        raise ValueError(f"fc1000 must be (kernel {FC1000_SHAPES[0]}, bias {FC1000_SHAPES[1]}), "
                         f"got shapes {found}")


def validate_and_assign(targets: dict, entries: dict, path: str, describe: str,
                        transform: Optional[dict] = None) -> list:
    """Checks that every target has an entry of its shape, reads all, then assigns all.

    targets: {name: variable}, each variable with `.shape` and `.assign(array)`;
    entries: {name: TensorEntry}, entries without a target are ignored here (the
      caller reports them as unused);
    transform: {name: fn(array) -> array} applied after reading, e.g. a reshape of
      an InnerProduct matrix [2048, 1000] to the 1x1 conv [1, 1, 2048, 1000] (an
      entry with a transform may differ in shape if its size matches).
    path, describe: name the file in messages ("<describe> <path> does not fit ...").
    Returns the sorted loaded names. Nothing is assigned unless every name, shape
    and value (finite, float32 after casting) is good; otherwise raises
    PretrainedWeightsError (`.missing`, `.mismatched` (name, expected, found)).
    """
    transform = transform or {}
    missing = sorted(name for name in targets if name not in entries)
    mismatched = []
    for name, var in targets.items():
        if name in entries:
            expected = tuple(var.shape)
            found = tuple(entries[name].shape)
            if found != expected and not (name in transform and
                                          int(np.prod(found)) == int(np.prod(expected))):
                mismatched.append((name, expected, found))
    if missing or mismatched:
        parts = [f"{describe} {path} does not fit the trunk."]
        if mismatched:
            parts.append("Shape mismatch: " + "; ".join(
                f"{name}: expected {exp}, found {got}" for name, exp, got in mismatched) + ".")
        if missing:
            parts.append(f"Missing {len(missing)} variable(s): {_list_names(missing)}.")
        parts.append("Check that the file is the one this loader is for and is complete.")
        raise PretrainedWeightsError(" ".join(parts), path, missing, mismatched)

    values = {}
    for name, var in targets.items():
        try:
            value = np.asarray(entries[name].read())
        except (tf.errors.OpError, OSError, ValueError, KeyError, IndexError, EOFError) as err:
            raise PretrainedWeightsError(
                f"Cannot read {name} (expected shape {tuple(var.shape)}) from {describe} "
                f"{path}: the file looks truncated or corrupt ({type(err).__name__}: {err})",
                path) from err
        if name in transform:
            value = transform[name](value)
        if tuple(value.shape) != tuple(var.shape):
            raise PretrainedWeightsError(
                f"{name} in {describe} {path}: expected shape {tuple(var.shape)}, found "
                f"{tuple(value.shape)} when read", path, mismatched=[
                    (name, tuple(var.shape), tuple(value.shape))])
        if not np.all(np.isfinite(value)):
            raise PretrainedWeightsError(
                f"{name} in {describe} {path} holds non-finite values: the file is corrupt",
                path)
        values[name] = value.astype(np.float32)
    for name, var in targets.items():
        var.assign(values[name])
    return sorted(targets)


# ------------------------------------------------------------ original TF1 / npy files


def checkpoint_entries(path: str) -> dict:
    """{variable name: TensorEntry} of a TF1/TF2 name-based checkpoint (prefix or
    directory), e.g. {"DeepLab/group_1/conv1/DW": TensorEntry((7, 7, 3, 64), read)}.

    Only the index is read here; values are read by `TensorEntry.read`. Raises
    PretrainedWeightsError naming the path when the checkpoint cannot be opened.
    """
    try:
        reader = tf.train.load_checkpoint(path)
        shapes = reader.get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as err:
        raise PretrainedWeightsError(
            f"Cannot read the checkpoint {path}: {type(err).__name__}: {err}. Pass the "
            f"checkpoint prefix (the name before .index / .data-*), complete and unmodified.",
            path) from err
    return {name: TensorEntry(tuple(shape), (lambda n=name: reader.get_tensor(n)))
            for name, shape in shapes.items()}


def _flatten(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "/"))
        else:
            flat[name] = value
    return flat


def _npy_entries(path: str) -> dict:
    """{name: TensorEntry} of a `np.save`d dict (flat 'a/b/DW' keys, or nested dicts)."""
    try:
        loaded = np.load(path, allow_pickle=True, encoding="latin1")
        tree = loaded[()] if isinstance(loaded, np.ndarray) and loaded.dtype == object else loaded
    except Exception as err:  # np.load raises many types on a truncated pickle
        raise PretrainedWeightsError(
            f"Cannot read {path} as a saved dict of arrays ({type(err).__name__}: {err}): "
            "the file looks truncated or is not a converter .npy", path) from err
    if not isinstance(tree, dict):
        raise PretrainedWeightsError(
            f"{path} holds a {type(tree).__name__}, not the dict of arrays the original "
            "converter (caffemodel2npy.py) writes", path)
    entries = {}
    for name, value in _flatten(tree).items():
        array = np.asarray(value)
        entries[name] = TensorEntry(tuple(array.shape), (lambda a=array: a))
    return entries


def _original_entries(path: str, scope: str):
    """Reads an original-format file.

    Returns ({name without scope: TensorEntry}, {name without scope: name in the file},
    [names in the file outside the scope]).
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a file path, got {type(path).__name__}")
    path = os.fspath(path)
    if path.endswith(".npy"):
        if not os.path.isfile(path):
            raise PretrainedWeightsError(f"No such file: {path}", path)
        raw = _npy_entries(path)
    else:
        if not (os.path.isdir(path) or os.path.exists(path + ".index")):
            raise PretrainedWeightsError(
                f"No checkpoint at {path} ({path}.index not found): give the prefix of a "
                f"TF checkpoint with {scope}/... variables, or a converter .npy", path)
        raw = checkpoint_entries(path)
    inside, file_names, outside = {}, {}, []
    for name, entry in raw.items():
        if name.startswith(scope + "/"):
            inside[name[len(scope) + 1:]] = entry
            file_names[name[len(scope) + 1:]] = name
        elif path.endswith(".npy"):
            inside[name] = entry  # the converter's .npy keys carry no scope
            file_names[name] = name
        else:
            outside.append(name)
    return inside, file_names, outside


def _load_original(trunk, path, scope: str, source: str, fc1000=None) -> ImportReport:
    entries, file_names, outside = _original_entries(path, scope)
    targets = dict(trunk.original_variables())
    if not targets:
        raise ValueError(f"{type(trunk).__name__} has no original variables to load "
                         f"{source} weights into: build the model with trunk='resnet101'")
    has_factor = any(name.endswith("/factor") for name in targets)
    factors = [name for name in entries if name.endswith("/factor")]
    if factors and not has_factor:
        non_unit = [n for n in factors if not np.all(np.asarray(entries[n].read()) == 1.0)]
        if non_unit:
            raise PretrainedWeightsError(
                f"{path} stores batch-norm statistics with Caffe factors ({non_unit[0]} != 1) "
                "but the trunk was built without factors: build it with has_factor=True "
                "(model weights='deeplab')", path)
    # Caffe's BatchNorm stores the factor as a 1-vector; accept a scalar too.
    transform = {name: (lambda a: np.reshape(a, (1,))) for name in targets
                 if name.endswith("/factor")}
    if fc1000 is not None:
        _check_fc1000(fc1000)
        targets["fc1000/DW"], targets["fc1000/biases"] = fc1000
        # The converter's .npy keeps the InnerProduct matrix [2048, 1000];
        # npy2tfmodel.py expands it to the 1x1 conv [1, 1, 2048, 1000].
        transform["fc1000/DW"] = lambda a: np.reshape(a, FC1000_SHAPES[0])
    loaded = validate_and_assign(targets, entries, path, f"{source} weights", transform)
    unused = sorted([file_names[name] for name in entries if name not in targets] + outside)
    return ImportReport(source=source, path=os.fspath(path), loaded=loaded, unused=unused)


def load_deeplab_weights(trunk, path) -> ImportReport:
    """Loads DeepLab-v2 VOC12 ResNet-101 weights into `trunk` (built with has_factor=True).

    path: a TF checkpoint prefix whose variables are `DeepLab/group_1/conv1/DW`, ...
    (TF-deeplab's `npy2tfmodel.py` output, or an RMI snapshot), or the converter's
    `.npy` dict keyed `group_1/conv1/DW`, ... The ASPP classifier `fc1_voc12/...`
    and anything outside `DeepLab/` are reported in `ImportReport.unused`.
    """
    return _load_original(trunk, path, "DeepLab", "deeplab")


def load_resnet_weights(trunk, path, fc1000=None) -> ImportReport:
    """Loads TF-resnet's ImageNet ResNet-101 (`ResNet/...` checkpoint or `.npy` dict).

    fc1000: optional `(kernel [1,1,2048,1000], bias [1000])` variables of the model's
    visual projection, filled from `fc1000/DW` and `fc1000/biases`.
    """
    return _load_original(trunk, path, "ResNet", "resnet", fc1000=fc1000)


# ------------------------------------------------------------ Keras Applications .h5


def keras_resnet101_unit_names() -> list:
    """[(keras conv layer, keras bn layer, our unit scope)] for all 104 conv+BN units.

    Keras `conv<s>_block<b>_<k>` is our `group_<s>_<b-1>/block_<k>`, with the
    projection shortcut `_0` as `block_add`; `conv1_conv`/`conv1_bn` is `group_1`.
    """
    names = [("conv1_conv", "conv1_bn", "group_1")]
    for stage, count in zip(range(2, 6), RESNET101_UNITS):
        for block in range(1, count + 1):
            for k in ((0, 1, 2, 3) if block == 1 else (1, 2, 3)):
                unit = "block_add" if k == 0 else f"block_{k}"
                prefix = f"conv{stage}_block{block}_{k}"
                names.append((f"{prefix}_conv", f"{prefix}_bn",
                              f"group_{stage}_{block - 1}/{unit}"))
    return names


def read_keras_h5(path) -> dict:
    """{layer name: {weight short name ('kernel', 'gamma', ...): np.ndarray}} of a Keras
    (2.x legacy layout) HDF5 weights file: root attribute `layer_names`, one group per
    layer with attribute `weight_names` (e.g. `conv1_conv/kernel:0`)."""
    import h5py  # only needed for this format

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise PretrainedWeightsError(f"No such file: {path}", path)
    try:
        with h5py.File(path, "r") as f:
            root = f["model_weights"] if "model_weights" in f else f
            if "layer_names" not in root.attrs:
                raise PretrainedWeightsError(
                    f"{path} is not a Keras HDF5 weights file (no 'layer_names' attribute); "
                    "expected resnet101_weights_tf_dim_ordering_tf_kernels[_notop].h5", path)
            layers = {}
            for raw_layer in root.attrs["layer_names"]:
                layer = raw_layer.decode("utf8") if isinstance(raw_layer, bytes) else raw_layer
                group = root[layer]
                weights = {}
                for raw_name in group.attrs.get("weight_names", []):
                    name = raw_name.decode("utf8") if isinstance(raw_name, bytes) else raw_name
                    short = name.split("/")[-1].split(":")[0]
                    weights[short] = np.asarray(group[name])
                if weights:
                    layers[layer] = weights
    except PretrainedWeightsError:
        raise
    except (OSError, KeyError, ValueError) as err:
        raise PretrainedWeightsError(
            f"Cannot read the Keras weights file {path} ({type(err).__name__}: {err}): "
            "it looks truncated or corrupt", path) from err
    return layers


def _keras_entries(layers: dict, unit_names, fc1000_wanted: bool):
    """Our variable names -> folded values, and the Keras weights used (for the report)."""
    entries, used = {}, set()

    def entry(value):
        return TensorEntry(tuple(value.shape), (lambda v=value: v))

    def weight(layer, short):
        return layers.get(layer, {}).get(short)

    for conv, bn, unit in unit_names:
        kernel, bias = weight(conv, "kernel"), weight(conv, "bias")
        gamma, beta = weight(bn, "gamma"), weight(bn, "beta")
        mean, var = weight(bn, "moving_mean"), weight(bn, "moving_variance")
        conv_name, bn_name = ("conv1", "bn_conv1") if unit == "group_1" else ("conv", "bn")
        if kernel is not None:
            entries[f"{unit}/{conv_name}/DW"] = entry(kernel)
            used.add(f"{conv}/kernel")
        if any(a is None for a in (bias, gamma, beta, mean, var)):
            continue  # reported as missing through the unit's batch-norm names
        if len({a.shape for a in (bias, gamma, beta, mean, var)}) != 1:
            # Report each statistic with the shape found (the bias stands in for the mean).
            found = {"gamma": gamma, "beta": beta, "variance": var,
                     "mean": mean if mean.shape == bias.shape else bias}
            for key, value in found.items():
                entries[f"{unit}/{bn_name}/{key}"] = entry(value)
            continue
        mean64, var64 = mean.astype(np.float64), var.astype(np.float64)
        # Keras: BN(conv(x) + bias) with eps 1.001e-5; ours: BN'(conv(x)) with eps 1e-3.
        # (z + b - m) * g / sqrt(v + e_k) == (z - (m - b)) * g' / sqrt(v + 1e-3)
        # with g' = g * sqrt(v + 1e-3) / sqrt(v + e_k).
        folded = {
            "gamma": gamma * np.sqrt(var64 + 1e-3) / np.sqrt(var64 + KERAS_RESNET_BN_EPSILON),
            "beta": beta,
            "mean": mean64 - bias,
            "variance": var64,
        }
        for key, value in folded.items():
            entries[f"{unit}/{bn_name}/{key}"] = entry(np.asarray(value, np.float32))
        used.update({f"{conv}/bias", f"{bn}/gamma", f"{bn}/beta", f"{bn}/moving_mean",
                     f"{bn}/moving_variance"})
    if fc1000_wanted and "predictions" in layers:
        entries["fc1000/DW"] = entry(layers["predictions"].get("kernel", np.zeros([0])))
        entries["fc1000/biases"] = entry(layers["predictions"].get("bias", np.zeros([0])))
        used.update({"predictions/kernel", "predictions/bias"})
    return entries, used


def build_keras_resnet101(include_top: bool, image_size: int = 64):
    """keras.applications.ResNet101 without weights, for checking an import against it."""
    import keras

    shape = (image_size, image_size, 3) if include_top else (None, None, 3)
    return keras.applications.ResNet101(weights=None, include_top=include_top,
                                        input_shape=shape)


def load_keras_resnet101_h5(trunk, path, fc1000=None, verify: bool = True,
                            keras_model=None) -> ImportReport:
    """Loads Keras Applications' ImageNet ResNet101 `.h5` into `trunk` (and `fc1000`).

    trunk: a built `ResNet101Trunk` (with or without factors; factors are set to 1).
    fc1000: optional `(kernel [1,1,2048,1000], bias [1000])` variables: the model's
      visual projection, filled from the Keras `predictions` Dense layer (the file
      with top is required then).
    verify: after loading, build `keras.applications.ResNet101(weights=None)`, load
      the same file into it with Keras' own reader and check our units against it
      (`verify_keras_resnet101_import`); pass `keras_model` to reuse a built one
      (include_top must match the file).

    Keras' units (conv with bias, BN eps 1.001e-5) are folded into ours (no bias,
    eps 1e-3) so each conv + BN pair computes the same function. Keras puts the stride
    of stages 3-5 in the first 1x1 conv like the original; our stages 4-5 keep stride 1
    and dilate instead (the DeepLab architecture the original uses with these weights).
    """
    layers = read_keras_h5(path)
    targets = dict(trunk.original_variables())
    if not targets:
        raise ValueError(f"{type(trunk).__name__} has no original variables: the Keras "
                         "ResNet101 weights need trunk='resnet101'")
    factors = {name: var for name, var in targets.items() if name.endswith("/factor")}
    for name in factors:
        del targets[name]
    if fc1000 is not None:
        _check_fc1000(fc1000)
        if "predictions" not in layers:
            raise PretrainedWeightsError(
                f"{path} has no 'predictions' layer (a _notop file?) but fc1000 was asked "
                "for: use resnet101_weights_tf_dim_ordering_tf_kernels.h5 (with top)",
                path, missing=["predictions"])
        targets["fc1000/DW"], targets["fc1000/biases"] = fc1000
    units = keras_resnet101_unit_names()
    entries, used = _keras_entries(layers, units, fc1000 is not None)
    keras_layer_of = {}  # our scope ('group_2_0/block_1') -> Keras layers, for messages
    for conv, bn, unit in units:
        keras_layer_of[unit] = f"{conv}/{bn}"
    try:
        loaded = validate_and_assign(targets, entries, os.fspath(path), "Keras ResNet101",
                                      {"fc1000/DW": lambda a: np.reshape(a, FC1000_SHAPES[0])}
                                      if fc1000 is not None else None)
    except PretrainedWeightsError as err:
        # Name the Keras layers too, so the message points into the .h5 file.
        keras_missing = sorted({keras_layer_of.get(name.rsplit("/", 2)[0], name)
                                for name in err.missing})
        if keras_missing:
            err.args = (err.args[0] + f" (Keras layers: {_list_names(keras_missing)})",)
        raise
    for var in factors.values():
        var.assign(np.ones(var.shape, np.float32))
    all_weights = {f"{layer}/{short}" for layer, ws in layers.items() for short in ws}
    report = ImportReport(source="keras_resnet101", path=os.fspath(path), loaded=loaded,
                          unused=sorted(all_weights - used))
    if verify:
        include_top = "predictions" in layers
        if keras_model is None:
            keras_model = build_keras_resnet101(include_top)
        try:
            keras_model.load_weights(os.fspath(path))
        except (ValueError, OSError) as err:
            raise ImportVerificationError(
                f"Keras itself cannot load {path} into ResNet101(include_top={include_top}): "
                f"{err}", os.fspath(path)) from err
        verify_keras_resnet101_import(trunk, keras_model, fc1000=fc1000)
        report.verified = True
    return report


def _compare(what: str, ours, reference, rtol: float, atol_fraction: float) -> None:
    ours, reference = np.asarray(ours), np.asarray(reference)
    atol = atol_fraction * max(float(np.abs(reference).max()), 1e-6)
    try:
        np.testing.assert_allclose(ours, reference, rtol=rtol, atol=atol)
    except AssertionError as err:
        raise ImportVerificationError(
            f"Imported trunk differs from Keras ResNet101 at {what}: {err}") from err


def verify_keras_resnet101_import(trunk, keras_model, fc1000=None, image_size: int = 64,
                                  seed: int = 0, rtol: float = 1e-4,
                                  atol_fraction: float = 1e-4) -> None:
    """Checks an imported trunk against the Keras ResNet101 holding the same weights.

    1. Every conv + BN unit: our kernel and folded batch norm, run with the Keras
       layer's own stride and padding, against Keras `bn(conv(x))` on a random input.
    2. Whole stages where the two networks agree (stride, padding, no dilation): our
       group 2 on Keras' `pool1_pool` output against `conv2_block3_out`, and our
       group 3 on `conv2_block3_out` against `conv3_block4_out`.
    3. With `fc1000` and a Keras top: softmax of our 1x1 conv on Keras' `avg_pool`
       against `predictions`.
    Raises ImportVerificationError (with numpy's report) on the first difference
    beyond `rtol` and `atol_fraction * max|reference|`.
    """
    import keras

    rng = np.random.default_rng(seed)
    for conv_name, bn_name, unit_scope in keras_resnet101_unit_names():
        unit = trunk.group_1 if unit_scope == "group_1" else \
            trunk.block(unit_scope.split("/")[0]).units()[unit_scope.split("/")[1]]
        conv_layer, bn_layer = keras_model.get_layer(conv_name), keras_model.get_layer(bn_name)
        size = 15 if conv_name == "conv1_conv" else 7
        x = rng.normal(0.0, 1.0, (1, size, size, unit.in_channels)).astype(np.float32)
        reference = bn_layer(conv_layer(x), training=False)
        ours = unit.bn(tf.nn.conv2d(x, tf.convert_to_tensor(unit.kernel),
                                    strides=conv_layer.strides,
                                    padding=conv_layer.padding.upper()))
        _compare(f"{conv_name} + {bn_name} (our {unit_scope})", ours, reference, rtol,
                 atol_fraction)

    outputs = ["pool1_pool", "conv2_block3_out", "conv3_block4_out"]
    probe = keras.Model(keras_model.input, [keras_model.get_layer(n).output for n in outputs])
    images = rng.normal(0.0, 50.0, (1, image_size, image_size, 3)).astype(np.float32)
    pool1, stage2, stage3 = [np.asarray(t) for t in probe(images, training=False)]
    for group, start, reference, count in ((2, pool1, stage2, 3), (3, stage2, stage3, 4)):
        x = tf.convert_to_tensor(start)
        for i in range(count):
            x = trunk.block(f"group_{group}_{i}")(x)
        _compare(f"stage conv{group} (our group_{group}_*)", x, reference, rtol, atol_fraction)

    if fc1000 is not None and "predictions" in [layer.name for layer in keras_model.layers]:
        head = keras.Model(keras_model.input, [keras_model.get_layer("avg_pool").output,
                                                keras_model.get_layer("predictions").output])
        pooled, probabilities = [np.asarray(t) for t in head(images, training=False)]
        kernel, bias = fc1000
        logits = tf.nn.conv2d(pooled[:, None, None, :], tf.convert_to_tensor(kernel), 1,
                              "SAME") + tf.convert_to_tensor(bias)
        _compare("predictions (our fc1000)", tf.nn.softmax(logits)[:, 0, 0, :], probabilities,
                 rtol, atol_fraction)


# ------------------------------------------------------------------------ dispatcher


def load_pretrained(trunk, path, weights: str, fc1000=None, verify: bool = True) -> ImportReport:
    """The trunk initialisation for `TrainConfig.pretrained`.

    weights 'deeplab': `load_deeplab_weights`; 'resnet': a Keras `.h5`/`.hdf5` goes to
    `load_keras_resnet101_h5`, anything else (TF-resnet checkpoint or `.npy`) to
    `load_resnet_weights`. fc1000: the model's `(kernel, bias)` when weights='resnet'.
    """
    path = os.fspath(path)
    if weights == "deeplab":
        return load_deeplab_weights(trunk, path)
    if weights == "resnet":
        if path.endswith((".h5", ".hdf5")):
            return load_keras_resnet101_h5(trunk, path, fc1000=fc1000, verify=verify)
        return load_resnet_weights(trunk, path, fc1000=fc1000)
    raise ValueError(f"Unknown weights {weights!r}: use 'deeplab' or 'resnet'")
