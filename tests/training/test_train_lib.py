"""Training recipe and loop: loss, learning rate, bias gradients, resume, NaN stop, config."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.conftest import REPO_ROOT, EntryPointWorker, tiny_model_config
from tests.records import (SIZE, T, VOCAB_SIZE, checkpoint_tensors, make_record, quadrant_mask,
                           tiny_run_config, write_manifest, write_shards)
from tf_rmi.training import train_lib
from tf_rmi.config import DataConfig, RunConfig, TrainConfig
from tf_rmi.data import pipeline

# Training needs the model (tf_rmi/models/segmenter.py); until it exists every
# test here is skipped with this reason rather than failing on the import.
pytest.importorskip("tf_rmi.models.segmenter", reason="tf_rmi.models.segmenter not present yet")

# tfrecord_dir: the quadrant set (tests/training/conftest.py, tests/records.py).


@pytest.fixture(scope="module")
def uninterrupted_run(tfrecord_dir, tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("run_full"))
    summary = train_lib.train(tiny_run_config(tfrecord_dir), run_dir, progress=False)
    return run_dir, summary


# ------------------------------------------------------------------------- loss


def test_downsample_mask_samples_input_position_i_times_ratio():
    # TF1 resize_bilinear without align_corners: output i reads input i * in/out.
    mask = np.zeros((1, 16, 16, 1), np.float32)
    mask[0, 8, 8, 0] = 1.0  # read by output (1, 1)
    mask[0, 4, 4, 0] = 1.0  # between samples: never read
    target = train_lib.downsample_mask(mask, (2, 2)).numpy()[0, :, :, 0]
    np.testing.assert_array_equal(target, [[0, 0], [0, 1]])


def test_downsample_mask_gives_soft_targets_between_samples():
    # 6 -> 4: output 1 reads position 1.5, halfway between inputs 1 and 2.
    mask = np.zeros((1, 6, 6, 1), np.float32)
    mask[0, :, 2, 0] = 1.0
    target = train_lib.downsample_mask(mask, (4, 4)).numpy()[0, 0, :, 0]
    np.testing.assert_allclose(target, [0.0, 0.5, 0.0, 0.0])


def test_loss_sums_over_map_averages_over_batch_and_decays_given_kernels():
    logits = np.array([[[1.0, -2.0], [0.5, 3.0]], [[0.0, 0.0], [-1.0, 2.0]]], np.float32)[..., None]
    mask = np.zeros((2, 16, 16, 1), np.float32)
    mask[0, 8:, 8:] = 1.0  # target cell (1, 1) of sample 0
    mask[1, :8, :] = 1.0  # target row 0 of sample 1
    target = mask[:, ::8, ::8]

    def bce(x, z):
        return np.log1p(np.exp(-np.abs(x))) + np.maximum(x, 0) - x * z

    expected_cls = np.mean([bce(logits[i], target[i]).sum() for i in range(2)])
    kernel_a = np.array([[1.0, 2.0]], np.float32)
    kernel_b = np.array([3.0], np.float32)
    expected_reg = 5e-4 * (1 + 4 + 9) / 2
    total, cls_loss, reg_loss = train_lib.loss_fn(
        tf.constant(logits), tf.constant(mask), [tf.constant(kernel_a), tf.constant(kernel_b)],
        weight_decay=5e-4)
    np.testing.assert_allclose(cls_loss.numpy(), expected_cls, rtol=1e-6)
    np.testing.assert_allclose(reg_loss.numpy(), expected_reg, rtol=1e-6)
    np.testing.assert_allclose(total.numpy(), expected_cls + expected_reg, rtol=1e-6)


def test_accuracy_counts_follow_the_original_compute_accuracy():
    logits = np.array([[0.0, -1.0], [2.0, -3.0]], np.float32)[None, :, :, None]
    mask = np.zeros((1, 16, 16, 1), np.float32)
    mask[0, :8, :] = 1.0  # positives: row 0
    counts = train_lib.accuracy_counts(tf.constant(logits), tf.constant(mask)).numpy()
    # row 0: logit 0 counts as positive (not < 0): correct; -1 wrong. row 1: 2 wrong, -3 correct.
    np.testing.assert_array_equal(counts, [1, 2, 1, 2])
    acc_all, acc_pos, acc_neg = train_lib.pixel_accuracy(counts)
    assert (acc_all, acc_pos, acc_neg) == (0.5, 1 / 3, 0.5)  # pos divides by num_pos + 1


# ------------------------------------------------------------- optimizer pieces


@pytest.mark.parametrize("decay_steps,length", [(0, 1000), (750000, 750000)])
def test_learning_rate_is_tf1_polynomial_decay(decay_steps, length):
    # 750000 is the original's decay length whatever the budget; 0 decays over the budget.
    cfg = TrainConfig(iterations=1000, learning_rate=2.5e-4, end_learning_rate=1e-5, lr_power=0.9,
                      lr_decay_steps=decay_steps)
    schedule = train_lib.learning_rate_schedule(cfg)
    for step in (0, 500, 1000, 1500):
        expected = (2.5e-4 - 1e-5) * (1 - min(step, length) / length) ** 0.9 + 1e-5
        np.testing.assert_allclose(float(schedule(step)), expected, rtol=1e-6)


def test_default_decay_length_is_the_originals_except_for_shapes(tmp_path):
    assert train_lib.config_from_flags("unc", str(tmp_path)).train.lr_decay_steps == 750000
    assert train_lib.config_from_flags("shapes", str(tmp_path)).train.lr_decay_steps == 0


def test_scale_bias_gradients_doubles_only_biases():
    kernel, bias = tf.Variable([1.0, 2.0]), tf.Variable([0.0])
    grads = train_lib.scale_bias_gradients(
        [tf.constant([1.0, -1.0]), tf.constant([3.0])], [kernel, bias], [bias], 2.0)
    np.testing.assert_array_equal(grads[0].numpy(), [1.0, -1.0])
    np.testing.assert_array_equal(grads[1].numpy(), [6.0])


def test_first_adam_step_receives_doubled_bias_gradients(tfrecord_dir, tmp_path):
    """After one step Adam's first moment is 0.1 * (applied gradient): 2x the
    true gradient for biases, 1x for kernels."""
    config = tiny_run_config(tfrecord_dir, iterations=1, snapshot_every=1)
    config = train_lib.resolve_vocab_size(config)
    tf.keras.utils.set_random_seed(config.train.seed)
    model = train_lib.build_training_state(config)[0]
    features, mask = next(iter(pipeline.train_dataset(
        config.data, "train", batch_size=2, seed=config.train.seed, shuffle_buffer=16,
        input_size=config.model.input_size, num_words=config.model.num_words)))
    with tf.GradientTape() as tape:
        logits = model((features["images"], features["words"]), training=True)["logits"]
        loss = train_lib.loss_fn(logits, mask, model.decayed_kernels(), config.train.weight_decay)[0]
    variables = model.trainable_variables
    true_grads = tape.gradient(loss, variables)

    train_lib.train(config, str(tmp_path), progress=False)
    restored_model, optimizer, _, checkpoint = train_lib.build_training_state(config)
    checkpoint.restore(tf.train.latest_checkpoint(os.path.join(tmp_path, "checkpoints")))
    bias_ids = {id(v) for v in restored_model.bias_variables()}
    assert bias_ids, "the model reports no bias variables"
    checked = {1.0: 0, 2.0: 0}
    for variable, grad in zip(restored_model.trainable_variables, true_grads):
        momentum = optimizer._momentums[optimizer._get_variable_index(variable)].numpy()
        multiplier = 2.0 if id(variable) in bias_ids else 1.0
        np.testing.assert_allclose(momentum, 0.1 * multiplier * tf.convert_to_tensor(grad).numpy(), rtol=1e-4,
                                   atol=1e-7, err_msg=variable.path)
        checked[multiplier] += 1
    assert checked[1.0] and checked[2.0]


def test_public_train_step_makes_the_update_of_a_manual_tape_step():
    """`make_train_step`'s step on one device equals the release's update
    written out by hand: `loss_fn` on the batch, its gradients with bias
    gradients doubled, one Adam step (checked through Adam's first moment,
    0.1 x the applied gradient, and the updated weights)."""
    from tf_rmi.models.segmenter import build_model

    cfg = tiny_model_config(vocab_size=VOCAB_SIZE, num_words=T)
    tcfg = TrainConfig(learning_rate=1e-3)
    rng = np.random.RandomState(0)
    images = tf.constant(rng.randn(2, SIZE, SIZE, 3).astype(np.float32) * 50)
    words = tf.constant([[0, 8, 4], [0, 9, 6]], tf.int32)
    mask = tf.constant(np.stack([quadrant_mask(0), quadrant_mask(2)])[..., None], tf.float32)

    def fresh():
        tf.keras.utils.set_random_seed(0)
        return build_model(cfg), train_lib.make_optimizer(tcfg)

    model, optimizer = fresh()
    train_step = train_lib.make_train_step(model, optimizer, tcfg)
    cls_loss, reg_loss, counts, stop = train_step.step({"images": images, "words": words}, mask)

    reference, reference_optimizer = fresh()
    variables = reference.trainable_variables
    with tf.GradientTape() as tape:
        logits = reference((images, words), training=True)["logits"]
        total, cls_ref, reg_ref = train_lib.loss_fn(logits, mask, reference.decayed_kernels(),
                                                    tcfg.weight_decay)
    bias_ids = {id(v) for v in reference.bias_variables()}
    grads = [g * 2.0 if id(v) in bias_ids else g
             for g, v in zip(tape.gradient(total, variables), variables)]
    reference_optimizer.apply_gradients(zip(grads, variables))

    assert float(cls_loss) == pytest.approx(float(cls_ref), rel=1e-6)
    assert float(reg_loss) == pytest.approx(float(reg_ref), rel=1e-6) and float(reg_loss) > 0
    np.testing.assert_array_equal(counts.numpy(), train_lib.accuracy_counts(logits, mask).numpy())
    assert not bool(stop)
    assert [id(v) for v in train_step.variables] == [id(v) for v in model.trainable_variables]
    for got, want, grad in zip(train_step.variables, variables, grads):
        momentum = optimizer._momentums[optimizer._get_variable_index(got)].numpy()
        np.testing.assert_allclose(momentum, 0.1 * tf.convert_to_tensor(grad).numpy(),
                                   rtol=1e-4, atol=1e-7, err_msg=got.path)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-7,
                                   err_msg=got.path)


def test_trunk_learning_rate_mult_scales_only_the_small_trunks_steps():
    """One Adam step from the same weights and gradients: with the multiplier
    the small trunk's variables move by mult x the plain step, the rest alike."""
    from tf_rmi.models.segmenter import build_model

    def one_step(mult):
        tf.keras.utils.set_random_seed(0)
        model = build_model(tiny_model_config(vocab_size=VOCAB_SIZE))
        cfg = dataclasses.replace(TrainConfig(learning_rate=1e-2),
                                  trunk_learning_rate_mult=mult)
        optimizer = train_lib.make_optimizer(cfg)
        before = [v.numpy().copy() for v in model.trainable_variables]
        grads = [tf.ones_like(v) * ((-1.0) ** k) for k, v in enumerate(model.trainable_variables)]
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return model, [v.numpy() - b for v, b in zip(model.trainable_variables, before)]

    model, plain = one_step(1.0)
    _, scaled = one_step(0.25)
    trunk_ids = {id(v) for v in model.trunk.trainable_variables}
    assert trunk_ids
    for variable, a, b in zip(model.trainable_variables, plain, scaled):
        factor = 0.25 if id(variable) in trunk_ids else 1.0
        np.testing.assert_allclose(b, factor * a, rtol=1e-4, atol=1e-9, err_msg=variable.path)


def test_trunk_learning_rate_mult_is_refused_for_the_frozen_resnet():
    config = RunConfig(train=TrainConfig(trunk_learning_rate_mult=0.1))
    with pytest.raises(ValueError, match="needs trunk='small'"):
        config.validate()


# ------------------------------------------------------------------ the loop


def test_training_lowers_the_loss_on_a_learnable_task(tfrecord_dir, tmp_path):
    config = tiny_run_config(tfrecord_dir, iterations=60, snapshot_every=60, learning_rate=1e-2,
                             end_learning_rate=3e-3)
    summary = train_lib.train(config, str(tmp_path), progress=False)
    losses = summary["cls_losses"]
    assert len(losses) == 60
    # Best summed loss on the 8x8 map of a model blind to the input: predict the
    # 1/4 foreground prior everywhere.
    cells, prior = (SIZE // 8) ** 2, 0.25
    input_blind = -cells * (prior * np.log(prior) + (1 - prior) * np.log(1 - prior))
    assert np.mean(losses[-10:]) < 0.75 * input_blind
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])


def test_bucket_by_length_reaches_the_training_stream_and_config_json(tfrecord_dir, tmp_path,
                                                                      monkeypatch):
    from tf_rmi.data import pipeline

    seen = []
    real = pipeline.train_dataset

    def spy(*args, **kwargs):
        seen.append(kwargs.get("bucket_by_length"))
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "train_dataset", spy)
    config = tiny_run_config(tfrecord_dir, iterations=3, snapshot_every=3, bucket_by_length=True)
    summary = train_lib.train(config, str(tmp_path), progress=False)
    assert seen == [True] and summary["step"] == 3 and np.isfinite(summary["final_loss"])
    assert RunConfig.load(str(tmp_path)).train.bucket_by_length is True


def test_config_json_holds_the_resolved_run_config(uninterrupted_run):
    run_dir, summary = uninterrupted_run
    saved = RunConfig.load(run_dir)
    assert saved.model.vocab_size == VOCAB_SIZE == summary["vocab_size"]
    assert saved.train.iterations == 12


def test_checkpoints_every_snapshot_and_at_the_end(uninterrupted_run):
    run_dir, summary = uninterrupted_run
    state = tf.train.get_checkpoint_state(os.path.join(run_dir, "checkpoints"))
    assert [os.path.basename(p) for p in state.all_model_checkpoint_paths] == [
        "ckpt-4", "ckpt-8", "ckpt-12"]
    assert summary["step"] == 12 and summary["checkpoint"].endswith("ckpt-12")


def test_tensorboard_logs_scalars_and_images(uninterrupted_run):
    # Read back through tensorboard's own reader: what `tensorboard --logdir` shows.
    from tensorboard.backend.event_processing import event_accumulator

    run_dir, summary = uninterrupted_run
    accumulator = event_accumulator.EventAccumulator(
        os.path.join(run_dir, "logs"), size_guidance={event_accumulator.TENSORS: 0,
                                                      event_accumulator.IMAGES: 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    scalars = {"loss", "cls_loss", "reg_loss", "learning_rate", "accuracy/all",
               "accuracy/positive", "accuracy/negative"}
    assert scalars <= set(tags["tensors"])
    assert {"input", "ground_truth", "probability"} <= set(tags["tensors"])
    # log_every=2: each point is the mean of its two steps' values.
    loss = accumulator.Tensors("loss")
    assert [e.step for e in loss] == [2, 4, 6, 8, 10, 12]
    np.testing.assert_allclose(float(tf.make_ndarray(loss[-1].tensor_proto)),
                               np.mean(summary["losses"][-2:]), rtol=1e-5)
    image = accumulator.Tensors("probability")[-1].tensor_proto
    assert accumulator.SummaryMetadata("probability").plugin_data.plugin_name == "images"
    width, height, *pngs = tf.make_ndarray(image)
    assert (int(width), int(height)) == (SIZE, SIZE) and len(pngs) == 2  # batch of 2 samples


def test_resume_reaches_the_uninterrupted_state(uninterrupted_run, tfrecord_dir, tmp_path):
    _, full = uninterrupted_run
    config = tiny_run_config(tfrecord_dir)
    first = train_lib.train(config, str(tmp_path), progress=False, max_steps=5)
    assert first["step"] == 5 and not first["resumed"]
    second = train_lib.train(config, str(tmp_path), progress=False)
    assert second["resumed"] and second["start_step"] == 5 and second["step"] == 12
    np.testing.assert_allclose(second["losses"], full["losses"][5:], rtol=1e-5)
    expected, resumed = checkpoint_tensors(full["checkpoint"]), checkpoint_tensors(second["checkpoint"])
    assert sorted(expected) == sorted(resumed)
    assert any("optimizer" in key for key in expected)  # Adam slots are compared too
    for key in expected:
        np.testing.assert_allclose(resumed[key], expected[key], rtol=1e-5, atol=1e-7, err_msg=key)


def _event_scalars(log_dir, tag):
    values = {}
    for name in os.listdir(log_dir):
        for event in tf.compat.v1.train.summary_iterator(os.path.join(log_dir, name)):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values


def test_eval_every_scores_logs_and_keeps_the_best_step(tfrecord_dir, tmp_path):
    # The quadrant records are a (padded) training split; evaluation scores it at
    # the padded size, which is enough to exercise the mechanism.
    config = tiny_run_config(tfrecord_dir, eval_every=4, eval_split="train")
    summary = train_lib.train(config, str(tmp_path), progress=False)
    history = train_lib.read_validation_history(str(tmp_path))
    assert [h["step"] for h in history] == [4, 8, 12]
    assert all(h["expressions"] == 16 and 0.0 <= h["overall_iou"] <= 1.0 for h in history)
    best = json.load(open(tmp_path / "best.json"))
    assert best["overall_iou"] == max(h["overall_iou"] for h in history)
    assert best["step"] == min(h["step"] for h in history
                               if h["overall_iou"] == best["overall_iou"])
    assert summary["best"] == best
    # The best step's weights are kept even though the run went on past it.
    assert tf.train.latest_checkpoint(str(tmp_path / "best")).endswith(f"ckpt-{best['step']}")
    logged = _event_scalars(str(tmp_path / "logs"), "val/overall_iou")
    assert sorted(logged) == [4, 8, 12]
    np.testing.assert_allclose([logged[k] for k in (4, 8, 12)],
                               [h["overall_iou"] for h in history], rtol=1e-6)
    assert sorted(_event_scalars(str(tmp_path / "logs"), "val/precision@0.5")) == [4, 8, 12]


def test_validation_history_continues_after_a_resume(tfrecord_dir, tmp_path):
    config = tiny_run_config(tfrecord_dir, eval_every=4, eval_split="train",
                             eval_max_expressions=6)
    train_lib.train(config, str(tmp_path), progress=False, max_steps=8)
    train_lib.train(config, str(tmp_path), progress=False)
    history = train_lib.read_validation_history(str(tmp_path))
    assert [(h["step"], h["expressions"]) for h in history] == [(4, 6), (8, 6), (12, 6)]


def test_eval_every_with_a_missing_split_fails_before_training(tfrecord_dir, tmp_path):
    config = tiny_run_config(tfrecord_dir, eval_every=4, eval_split="val")
    with pytest.raises(FileNotFoundError, match="split 'val'"):
        train_lib.train(config, str(tmp_path), progress=False)
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")) is None


def test_resume_with_another_model_config_names_the_fields(uninterrupted_run, tfrecord_dir):
    run_dir, _ = uninterrupted_run
    config = tiny_run_config(tfrecord_dir)
    other = dataclasses.replace(config, model=dataclasses.replace(config.model, mlstm_units=9))
    with pytest.raises(train_lib.ConfigMismatchError, match=r"mlstm_units: saved 8, asked 9"):
        train_lib.train(other, run_dir, progress=False)


def test_nan_loss_stops_before_saving_and_keeps_checkpoints(tfrecord_dir, tmp_path, monkeypatch):
    config = tiny_run_config(tfrecord_dir, iterations=8, snapshot_every=2)
    train_lib.train(config, str(tmp_path), progress=False, max_steps=4)
    checkpoint_dir = os.path.join(tmp_path, "checkpoints")
    before = checkpoint_tensors(tf.train.latest_checkpoint(checkpoint_dir))

    true_loss = train_lib.per_example_cls_loss

    def poisoned_loss(logits, mask):
        return true_loss(logits, mask) * float("nan")

    monkeypatch.setattr(train_lib, "per_example_cls_loss", poisoned_loss)
    # Snapshot every step: a check placed after the snapshot would save ckpt-5.
    resumed = dataclasses.replace(config, train=dataclasses.replace(config.train, snapshot_every=1))
    with pytest.raises(train_lib.NonFiniteLossError, match=r"at step 5 .*ckpt-4 is intact"):
        train_lib.train(resumed, str(tmp_path), progress=False)
    assert tf.train.latest_checkpoint(checkpoint_dir).endswith("ckpt-4")
    after = checkpoint_tensors(tf.train.latest_checkpoint(checkpoint_dir))
    for key in before:
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


def test_vocab_size_mismatch_is_reported(tfrecord_dir, tmp_path):
    config = tiny_run_config(tfrecord_dir)
    config = dataclasses.replace(config, model=dataclasses.replace(config.model, vocab_size=60))
    with pytest.raises(ValueError, match=r"vocab_size=60 .* has 50 words"):
        train_lib.train(config, str(tmp_path), progress=False)


def test_config_from_flags_keeps_every_snapshot_for_the_paper_datasets():
    for dataset in ("unc", "unc+", "Gref", "referit"):
        cfg = train_lib.config_from_flags(dataset, "records")
        assert cfg.train.keep_checkpoints >= cfg.train.iterations // cfg.train.snapshot_every
    assert train_lib.config_from_flags("shapes", "records").train.keep_checkpoints == 5
    assert train_lib.config_from_flags("unc", "records", keep_checkpoints=3).train.keep_checkpoints == 3


def test_config_from_flags_takes_the_dataset_budget():
    config = train_lib.config_from_flags(dataset="shapes", tfrecord_dir="records", model="LSTM",
                                         weights="resnet", trunk="small")
    from tf_rmi.config import dataset_spec
    assert (config.train.iterations, config.train.snapshot_every) == (
        dataset_spec("shapes").iterations, dataset_spec("shapes").snapshot_every)
    assert config.model.vocab_size == 0  # resolved from the vocabulary by train()
    assert (config.model.model, config.model.weights, config.model.trunk) == ("LSTM", "resnet", "small")
    with pytest.raises(ValueError, match="--model must be RMI or LSTM"):
        train_lib.config_from_flags(dataset="shapes", tfrecord_dir="records", model="GRU")


# --------------------------------------------------------------- distribution

_MIRRORED_SCRIPT = r"""
import json, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tests.records import tiny_run_config, checkpoint_tensors
from tf_rmi.training import train_lib
import dataclasses, numpy as np
records, out = sys.argv[1], sys.argv[2]
base = tiny_run_config(records, iterations=2, snapshot_every=2)
single = dataclasses.replace(base, train=dataclasses.replace(base.train, batch_size=2))
mirrored = dataclasses.replace(base, train=dataclasses.replace(base.train, batch_size=1,
                                                                strategy="mirrored"))
a = train_lib.train(single, out + "/single", progress=False)
b = train_lib.train(mirrored, out + "/mirrored", progress=False)
ta, tb = checkpoint_tensors(a["checkpoint"]), checkpoint_tensors(b["checkpoint"])
diff = {k: float(np.max(np.abs(ta[k].astype(np.float64) - tb[k]))) for k in ta if k in tb}
report = {"replicas": b["num_replicas"], "global": [a["global_batch"], b["global_batch"]],
          "losses": [a["losses"], b["losses"]], "max_diff": max(diff.values()),
          "missing": sorted(set(ta) ^ set(tb)), "mixed": {}}
# Mixed precision under `mirrored` on the same two logical CPUs (one step each).
for precision in ("mixed_float16", "mixed_bfloat16"):
    config = dataclasses.replace(base, train=dataclasses.replace(
        base.train, iterations=1, snapshot_every=1, batch_size=1, strategy="mirrored",
        precision=precision))
    summary = train_lib.train(config, out + "/" + precision, progress=False)
    dtypes = tf.train.load_checkpoint(summary["checkpoint"]).get_variable_to_dtype_map()
    report["mixed"][precision] = {
        "replicas": summary["num_replicas"], "step": summary["step"],
        "finite": bool(np.all(np.isfinite(summary["losses"]))),
        "weight_dtypes": sorted({dtypes[k].name for k in dtypes if k.startswith("model/")
                                 and "OPTIMIZER_SLOT" not in k and dtypes[k].is_floating}),
        "loss_scale_saved": any("scale" in k.lower() for k in dtypes if k.startswith("optimizer"))}
print(json.dumps(report))
"""


@pytest.fixture(scope="module")
def two_logical_cpus(tfrecord_dir, tmp_path_factory):
    """The report of _MIRRORED_SCRIPT, run once in a process with two logical CPUs."""
    result = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT, tfrecord_dir,
                             str(tmp_path_factory.mktemp("mirrored"))],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_mixed_precision_trains_under_mirrored_with_two_logical_cpus(two_logical_cpus):
    for precision, entry in two_logical_cpus["mixed"].items():
        assert entry["replicas"] == 2 and entry["step"] == 1 and entry["finite"], precision
        # Variables stay float32 (computations in 16 bits): the mixed policies' rule.
        assert entry["weight_dtypes"] == ["float32"], precision
    assert sorted(two_logical_cpus["mixed"]) == ["mixed_bfloat16", "mixed_float16"]
    assert two_logical_cpus["mixed"]["mixed_float16"]["loss_scale_saved"]  # LossScaleOptimizer


def test_mirrored_two_replicas_match_one_device_with_the_same_global_batch(two_logical_cpus):
    report = two_logical_cpus
    assert report["replicas"] == 2 and report["global"] == [2, 2]
    assert report["missing"] == []
    np.testing.assert_allclose(report["losses"][1], report["losses"][0], rtol=1e-5)
    assert report["max_diff"] < 1e-5


def _entry_point_args(tfrecord_dir, run_dir, *extra):
    return ["--dataset=shapes", f"--tfrecord_dir={tfrecord_dir}", "--model=LSTM",
            "--weights=resnet", f"--run_dir={run_dir}", "--trunk=small", "--small_trunk_width=8",
            f"--input_size={SIZE}", f"--num_words={T}", "--visual_dim=16", "--embed_dim=12",
            "--lstm_units=10", "--mlstm_units=8", "--iterations=3", "--snapshot_every=2",
            "--batch_size=2", "--noprogress", *extra]


@pytest.fixture(scope="module")
def train_command():
    """Runs `python -m tf_rmi.train <args>`, each command in one worker process
    (tests/conftest.py EntryPointWorker; tests/cli/test_cli.py, test_distributed.py and
    test_preemption.py start the entry point as processes of their own). Returns
    a CompletedProcess with text streams."""
    worker = EntryPointWorker("tf_rmi.train")

    def run(args):
        result = worker.run(*args, cwd=REPO_ROOT, timeout=300)
        return subprocess.CompletedProcess(result.args, result.returncode,
                                           result.stdout.decode("utf-8", "replace"),
                                           result.stderr.decode("utf-8", "replace"))
    yield run
    worker.close()


def test_train_entry_point_trains_then_resumes(tfrecord_dir, tmp_path, train_command):
    run_dir = str(tmp_path / "run")
    args = _entry_point_args(tfrecord_dir, run_dir)
    first = train_command(args + ["--max_steps=2"])
    assert first.returncode == 0, first.stderr[-3000:]
    second = train_command(args)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "to step 3 (from 2)" in second.stdout
    assert RunConfig.load(run_dir).model.model == "LSTM"


def test_train_entry_point_reports_bad_input_without_traceback(tfrecord_dir, tmp_path,
                                                               train_command):
    # Outside this process: absl flags of several entry points must not meet in one process.
    args = _entry_point_args(tfrecord_dir, str(tmp_path), "--num_words=20")
    result = train_command(args)
    assert result.returncode != 0
    assert "train: " in result.stderr and "num_words=20" in result.stderr
    assert "Traceback" not in result.stderr


def test_pretrained_trunk_is_loaded_before_the_first_checkpoint_and_not_on_resume(
        tfrecord_dir, tmp_path, monkeypatch):
    from tf_rmi.models import pretrained

    calls = []

    def fake_load_pretrained(trunk, path, weights, fc1000=None, verify=True):
        # Stands in for reading a 170 MB ResNet-101 file: marks one trunk variable.
        calls.append((path, weights, fc1000))
        trunk.original_variables()["group_1/conv1/DW"].assign(
            tf.fill(trunk.original_variables()["group_1/conv1/DW"].shape, 0.125))
        return pretrained.ImportReport("resnet", path, ["group_1/conv1/DW"], [])

    monkeypatch.setattr(pretrained, "load_pretrained", fake_load_pretrained)
    weights_file = tmp_path / "resnet101.npy"
    weights_file.write_bytes(b"placeholder")
    config = tiny_run_config(tfrecord_dir, iterations=2, snapshot_every=1, batch_size=1,
                             pretrained=str(weights_file))
    config = dataclasses.replace(config, model=dataclasses.replace(
        config.model, trunk="resnet101", weights="resnet"))
    run_dir = str(tmp_path / "run")
    summary = train_lib.train(config, run_dir, progress=False, max_steps=1)
    assert len(calls) == 1 and calls[0][:2] == (str(weights_file), "resnet")
    kernel, bias = calls[0][2]  # the model's fc1000 (its visual projection)
    assert kernel.path.endswith("fc1000/DW") and bias.path.endswith("fc1000/biases")
    saved = checkpoint_tensors(summary["checkpoint"])
    conv1 = [k for k in saved if k.startswith("model/trunk") and np.all(saved[k] == 0.125)]
    assert conv1, "the imported trunk weights are not in the first checkpoint"
    train_lib.train(config, run_dir, progress=False)
    assert len(calls) == 1  # resumed from the checkpoint, not re-imported


@pytest.mark.paper_size
def test_paper_size_deeplab_rmi_trains_two_steps(tmp_path):
    """D+RMI at the paper's sizes (ResNet-101 at 320, 1000/1000/500 head, T=20, the
    Gref vocabulary size): two steps of batch 1 run, start near 1600 cells x ln 2,
    and write ckpt-2. About 30 s on 2 CPU cores."""
    size, num_words = 320, 20
    root = str(tmp_path / "records")
    directory = os.path.join(root, "unc")
    rng = np.random.default_rng(0)
    mask = np.zeros((size, size), bool)
    mask[60:200, 80:250] = True
    write_shards(directory, "train", [
        make_record(rng.integers(0, 256, (size, size, 3), dtype=np.uint8), mask,
                    [0] * 16 + [5, 6, 7, 8], "s", n, n) for n in range(2)])
    write_manifest(directory, size)
    config = RunConfig(data=DataConfig(dataset="unc", tfrecord_dir=root),
                       model=dataclasses.replace(RunConfig().model, vocab_size=12112),
                       train=TrainConfig(iterations=2, snapshot_every=2))
    assert (config.model.model, config.model.weights, config.model.trunk) == ("RMI", "deeplab", "resnet101")
    summary = train_lib.train(config, str(tmp_path / "run"), progress=False)
    assert summary["step"] == 2 and summary["checkpoint"].endswith("ckpt-2")
    assert all(np.isfinite(summary["losses"]))
    assert abs(summary["cls_losses"][0] - 1600 * np.log(2)) < 0.1 * 1600 * np.log(2)
