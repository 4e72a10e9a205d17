"""Import of original-release TF1 snapshots, checked against the original equations."""
import os

import numpy as np
import pytest
import tensorflow as tf

from tests.models.test_segmenter import _np_lstm_baseline, _np_rmi
from tf_rmi.config import ModelConfig
from tf_rmi.models import segmenter, weights
from tf_rmi.models.pretrained import PretrainedWeightsError

SMALL_HEAD = dict(input_size=32, num_words=5, visual_dim=6, embed_dim=5, lstm_units=4,
                  mlstm_units=3, vocab_size=11)


def _random_snapshot(model, leaves=("kernel", "bias"), seed=0, extra=True):
    """{original name: random array} for `model`, plus what a training snapshot also holds."""
    rng = np.random.RandomState(seed)
    values = {}
    for name, var in weights.original_variable_map(model, leaves).items():
        shape = tuple(var.shape)
        if name.endswith(("/variance", "/factor")):
            values[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            values[name] = (rng.randn(*shape) * 0.1).astype(np.float32)
    if extra:
        values["text_objseg/conv2/DW/Adam"] = np.zeros_like(values["text_objseg/conv2/DW"])
        values["text_objseg/conv2/DW/Adam_1"] = np.zeros_like(values["text_objseg/conv2/DW"])
        values["beta1_power"] = np.float32(0.9)
        values["beta2_power"] = np.float32(0.999)
        values["text_objseg/Variable"] = np.float32(1234.0)
        if model.config.weights == "deeplab":
            values["DeepLab/fc1_voc12/conv0/DW"] = rng.randn(3, 3, 2048, 21).astype(np.float32)
    return values


def _write(values, prefix):
    names = sorted(values)
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=[tf.constant(values[n]) for n in names])
    return prefix


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory):
    """Original-format snapshots for RMI/deeplab (kernel/bias) and LSTM/resnet (weights/biases)."""
    root = tmp_path_factory.mktemp("snapshots")
    out = {}
    for kind, w, leaves in (("RMI", "deeplab", ("kernel", "bias")),
                            ("LSTM", "resnet", ("weights", "biases")),
                            ("RMI", "resnet", ("weights", "biases")),
                            ("LSTM", "deeplab", ("kernel", "bias"))):
        template = segmenter.build_model(ModelConfig(model=kind, weights=w, **SMALL_HEAD))
        values = _random_snapshot(template, leaves)
        out[(kind, w)] = (_write(values, str(root / f"{kind}_{w}")), values)
    return out


@pytest.fixture(scope="module")
def loaded(snapshots):
    """`load(kind, w)`: (model, report) of `load_original_checkpoint` of that
    snapshot, loaded once for the tests that only read or call the model."""
    cache = {}

    def load(kind, w):
        if (kind, w) not in cache:
            cache[(kind, w)] = weights.load_original_checkpoint(
                snapshots[(kind, w)][0], model=kind, weights=w, return_report=True, **SMALL_HEAD)
        return cache[(kind, w)]
    return load


def _inputs(n=2, size=32, seed=1):
    rng = np.random.RandomState(seed)
    images = (rng.randn(n, size, size, 3) * 60).astype(np.float32)
    words = np.array([[0, 0, 3, 7, 2], [0, 4, 0, 9, 1]], np.int32)[:n]
    return images, words


@pytest.mark.parametrize("kind,w", [("RMI", "deeplab"), ("LSTM", "resnet"), ("RMI", "resnet"),
                                    ("LSTM", "deeplab")])
def test_import_loads_every_variable_and_matches_the_equations(snapshots, loaded, kind, w):
    _, values = snapshots[(kind, w)]
    model, report = loaded(kind, w)
    for name, var in weights.original_variable_map(model, report.lstm_leaf_names.split("/")).items():
        np.testing.assert_array_equal(var.numpy(), values[name])
    assert report.unused == []
    assert "beta1_power" in report.ignored and "text_objseg/conv2/DW/Adam" in report.ignored
    images, words = _inputs()
    out = model((images, words))
    visual = model.visual_features(images).numpy().astype(np.float64)
    for b in range(2):
        if kind == "RMI":
            logits, up, _ = _np_rmi(model, visual[b], words[b], 32)
        else:
            logits, up = _np_lstm_baseline(model, visual[b], words[b], 32)
        np.testing.assert_allclose(out["logits"][b].numpy(), logits, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out["upsampled_logits"][b].numpy(), up, rtol=1e-4, atol=1e-5)


def test_visual_projection_uses_the_original_names(snapshots, loaded):
    _, values = snapshots[("LSTM", "resnet")]
    model, _ = loaded("LSTM", "resnet")
    np.testing.assert_array_equal(model.visual_proj.kernel.numpy(), values["ResNet/fc1000/DW"])
    np.testing.assert_array_equal(model.trunk.original_variables()["group_1/conv1/DW"].numpy(),
                                  values["ResNet/group_1/conv1/DW"])


def test_wrong_model_kind_is_named(snapshots):
    prefix, _ = snapshots[("LSTM", "resnet")]
    with pytest.raises(PretrainedWeightsError, match="model='LSTM'"):
        weights.load_original_checkpoint(prefix, model="RMI", weights="resnet", **SMALL_HEAD)
    with pytest.raises(PretrainedWeightsError, match="weights='resnet'"):
        weights.load_original_checkpoint(prefix, model="LSTM", weights="deeplab", **SMALL_HEAD)


def test_wrong_vocab_size_names_the_variable_and_both_shapes(snapshots):
    prefix, _ = snapshots[("RMI", "deeplab")]
    cfg = dict(SMALL_HEAD, vocab_size=12)
    with pytest.raises(PretrainedWeightsError,
                       match=r"text_objseg/embedding: expected \(12, 5\), found \(11, 5\)"):
        weights.load_original_checkpoint(prefix, model="RMI", weights="deeplab", **cfg)


def test_missing_variable_is_listed_and_nothing_is_assigned(snapshots, tmp_path):
    _, values = snapshots[("RMI", "deeplab")]
    partial = dict(values)
    del partial["text_objseg/conv2/biases"]
    prefix = _write(partial, str(tmp_path / "partial"))
    model = segmenter.build_model(ModelConfig(model="RMI", weights="deeplab", **SMALL_HEAD))
    before = model.embedding.numpy().copy()
    with pytest.raises(PretrainedWeightsError, match="text_objseg/conv2/biases"):
        weights.load_into(model, prefix)
    np.testing.assert_array_equal(model.embedding.numpy(), before)


def test_truncated_snapshot_is_a_clear_error(snapshots, tmp_path):
    prefix, values = snapshots[("RMI", "deeplab")]
    small = {k: v for k, v in values.items() if not k.startswith("DeepLab/")}
    small.update({k: v for k, v in values.items() if k.startswith("DeepLab/group_1/")})
    bad = _write(values, str(tmp_path / "bad"))
    data = [f for f in os.listdir(tmp_path) if f.startswith("bad.data")][0]
    path = tmp_path / data
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(PretrainedWeightsError, match="truncated or corrupt|Cannot read"):
        weights.load_original_checkpoint(bad, model="RMI", weights="deeplab", **SMALL_HEAD)


@pytest.mark.paper_size
def test_paper_size_models_build_with_the_original_shapes():
    shapes = {}
    for kind in ("RMI", "LSTM"):
        for w in ("deeplab", "resnet"):
            model = segmenter.build_model(ModelConfig(model=kind, weights=w, trunk="small",
                                                      small_trunk_width=256))
            names = weights.original_variable_map(model)
            shapes[(kind, w)] = {n: tuple(v.shape) for n, v in names.items()
                                 if not n.startswith(("DeepLab/", "ResNet/group"))}
    cell = "multi_rnn_cell/cell_0/basic_lstm_cell/kernel"
    assert shapes[("RMI", "deeplab")][f"text_objseg/RNN/ALSTM/{cell}"] == (3508, 2000)
    assert shapes[("RMI", "deeplab")][f"text_objseg/RNN/WLSTM/{cell}"] == (2000, 4000)
    assert shapes[("LSTM", "resnet")]["text_objseg/conv1/DW"] == (1, 1, 2008, 500)
    assert shapes[("RMI", "resnet")]["ResNet/fc1000/DW"] == (1, 1, 2048, 1000)
    assert shapes[("LSTM", "deeplab")]["text_objseg/conv0/DW"] == (1, 1, 2048, 1000)
    assert shapes[("RMI", "deeplab")]["text_objseg/embedding"] == (12112, 1000)


@pytest.mark.paper_size
def test_paper_size_deeplab_rmi_import_and_forward(tmp_path):
    template = segmenter.build_model(ModelConfig())
    values = _random_snapshot(template, seed=3)
    prefix = _write(values, str(tmp_path / "paper"))
    del template
    model = tf_rmi_load(prefix)
    images = (np.random.RandomState(0).randn(1, 320, 320, 3) * 60).astype(np.float32)
    words = np.zeros((1, 20), np.int32)
    words[0, -4:] = [12, 7, 0, 99]
    out = model((images, words))
    assert out["logits"].shape == (1, 40, 40, 1)
    assert out["upsampled_logits"].shape == (1, 320, 320, 1)
    assert out["response_map"].shape == (1, 320, 320)
    visual = model.visual_features(images).numpy().astype(np.float64)[0]
    logits, _, _ = _np_rmi(model, visual, words[0], None)  # the logits are compared
    np.testing.assert_allclose(out["logits"][0].numpy(), logits, rtol=1e-4, atol=1e-4)


def tf_rmi_load(prefix):
    import tf_rmi
    return tf_rmi.load_original_checkpoint(prefix, model="RMI", weights="deeplab",
                                           vocab_size=12112)


def test_import_writes_a_run_dir_that_restores_identically(snapshots, loaded, tmp_path):
    from tf_rmi.training import weights_import_lib
    from tf_rmi.training.run_dir import restore_model

    prefix, _ = snapshots[("RMI", "deeplab")]
    run_dir = str(tmp_path / "imported")
    overrides = {k: v for k, v in SMALL_HEAD.items() if k != "vocab_size"}
    weights_import_lib.import_original(prefix, run_dir, model="RMI", weights="deeplab",
                                       vocab_size=SMALL_HEAD["vocab_size"], **overrides)
    direct, _ = loaded("RMI", "deeplab")
    restored, config, _ = restore_model(run_dir)
    assert config.model.model == "RMI" and config.model.vocab_size == SMALL_HEAD["vocab_size"]
    images, words = _inputs()
    np.testing.assert_allclose(restored((images, words))["logits"].numpy(),
                               direct((images, words))["logits"].numpy(), rtol=1e-6)
