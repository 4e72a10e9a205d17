"""Trains RMI / the LSTM baseline: `tf_rmi train --dataset=unc --run_dir=runs/unc_RMI ...`.

On a run directory that already holds a checkpoint, training resumes from it
(the model flags must match the run's saved config.json). The run directory
gets config.json, a copy of the vocabulary (vocab.txt: the run predicts and
exports from anywhere), checkpoints/ and logs/. SIGTERM saves a checkpoint at
the current step and exits 0; `--strategy=multi_worker` reads TF_CONFIG (see
README). After the flags, `--config=<partial JSON>` then each
`--set=section.field=value` set the fields they name (any RunConfig field,
also those without a flag). The work is `tf_rmi.training.train_lib.train`.
"""
from absl import flags

from tf_rmi import config
from tf_rmi.cli import common

_M, _T = config.ModelConfig(), config.TrainConfig()
# The flags that fill the RunConfig (train_lib.config_from_flags), in its order.
CONFIG_FLAGS = ("dataset", "tfrecord_dir", "vocab_file", "model", "weights", "trunk",
                "small_trunk_width", "input_size", "num_words", "iterations", "snapshot_every",
                "batch_size", "learning_rate", "pretrained", "keep_checkpoints", "strategy",
                "precision", "jit_compile", "seed", "visual_dim", "embed_dim", "lstm_units",
                "mlstm_units", "log_every", "lr_decay_steps", "eval_every", "eval_split",
                "eval_max_expressions", "small_trunk_input_scale", "small_trunk_norm",
                "small_trunk_residual", "small_trunk_aligned", "small_trunk_standardize",
                "small_trunk_context", "trunk_learning_rate_mult", "deterministic",
                "bucket_by_length", "cache_trunk_features")


def define_flags(fv: flags.FlagValues) -> None:
    common.dataset(fv)
    common.tfrecord_dir(fv)
    common.run_dir(fv, "Run directory: config.json, checkpoints/, logs/.")
    common.vocab_file(fv, "Vocabulary (default: the manifest's).")
    common.model_kind(fv)
    common.weights_kind(fv)
    flags.DEFINE_string("split", None, "Training split (default: the dataset's, config.DATASETS).",
                        flag_values=fv)
    flags.DEFINE_enum("trunk", _M.trunk, list(config.TRUNKS), "Frozen ResNet-101 or a small "
                      "CPU trunk.", flag_values=fv)
    common.small_trunk(fv, _M, exclude=("small_trunk_norm_groups",))
    flags.DEFINE_integer("input_size", _M.input_size, "model.input_size: image side (records "
                         "must match).", flag_values=fv)
    flags.DEFINE_integer("num_words", _M.num_words, "model.num_words, T: word ids per expression "
                         "(records must match).", flag_values=fv)
    flags.DEFINE_integer("iterations", None, "Iteration budget (default: the dataset's, "
                         "config.DATASETS).", flag_values=fv)
    flags.DEFINE_integer("snapshot_every", None, "Steps between checkpoints (default per "
                         "dataset).", flag_values=fv)
    flags.DEFINE_integer("batch_size", _T.batch_size, "Batch size PER REPLICA (the original: 1).",
                         flag_values=fv)
    flags.DEFINE_float("learning_rate", _T.learning_rate, "Start of the polynomial decay (ends at "
                       "train.end_learning_rate).", flag_values=fv)
    flags.DEFINE_string("pretrained", None, "Trunk weights: DeepLab/ResNet checkpoint or .npy, "
                        "Keras .h5, or a pretrained small-trunk directory.", flag_values=fv)
    flags.DEFINE_integer("keep_checkpoints", None, "Checkpoints kept (default per dataset: every "
                         "snapshot for the paper datasets, as the original).", flag_values=fv)
    flags.DEFINE_enum("strategy", "default", list(config.STRATEGIES), "tf.distribute strategy.",
                      flag_values=fv)
    flags.DEFINE_enum("precision", "float32", list(config.PRECISIONS), "Keras dtype policy.",
                      flag_values=fv)
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the forward/backward pass.",
                      flag_values=fv)
    flags.DEFINE_integer("seed", _T.seed, "Seed of initialisation and data order.", flag_values=fv)
    flags.DEFINE_bool("deterministic", False, "Op determinism + seeds: reruns and "
                      "killed-and-resumed runs end bit-identical (slower; see README).",
                      flag_values=fv)
    flags.DEFINE_bool("bucket_by_length", _T.bucket_by_length, "Each batch from one bucket of "
                      "sentence lengths: fewer head steps per batch when batch_size > 1 (not "
                      "the original's).", flag_values=fv)
    flags.DEFINE_bool("cache_trunk_features", _T.cache_trunk_features, "Run the frozen trunk "
                      "once per training image and keep its outputs in memory (one device).",
                      flag_values=fv)
    flags.DEFINE_integer("visual_dim", _M.visual_dim, "D_I: conv0 / fc1000 output channels.",
                         flag_values=fv)
    flags.DEFINE_integer("embed_dim", _M.embed_dim, "Word embedding size.", flag_values=fv)
    flags.DEFINE_integer("lstm_units", _M.lstm_units, "Language LSTM units.", flag_values=fv)
    flags.DEFINE_integer("mlstm_units", _M.mlstm_units, "Multimodal LSTM units (RMI) / conv1 "
                         "width (LSTM).", flag_values=fv)
    flags.DEFINE_integer("lr_decay_steps", None, "Polynomial-decay length (default: the "
                         "original's 750000; shapes: the budget; 0 = the budget).", flag_values=fv)
    flags.DEFINE_integer("log_every", 20, "Steps between TensorBoard scalar writes.",
                         flag_values=fv)
    flags.DEFINE_integer("eval_every", 0, "Score the validation split every N steps (overall "
                         "IoU, P@0.5 to TensorBoard; the best step is kept in <run_dir>/best/). "
                         "0 = never.", flag_values=fv)
    flags.DEFINE_string("eval_split", "val", "Split scored by --eval_every.", flag_values=fv)
    flags.DEFINE_integer("eval_max_expressions", 0, "Expressions scored per validation "
                         "(0 = all).", flag_values=fv)
    flags.DEFINE_float("trunk_learning_rate_mult", _T.trunk_learning_rate_mult, "Small trunk "
                       "only: its variables step at learning_rate x this.", flag_values=fv)
    flags.DEFINE_string("config", None, "A partial run config: JSON with some fields of the "
                        "sections data, model, train (a run's config.json is one), applied after "
                        "the flags.", flag_values=fv)
    flags.DEFINE_multi_string("set", [], "section.field=value (sections data, model, train), "
                              "e.g. train.learning_rate=1e-3; repeatable; applied after --config.",
                              flag_values=fv)
    flags.DEFINE_integer("max_steps", None, "Stop (with a checkpoint) once this step is reached.",
                         flag_values=fv)
    flags.DEFINE_bool("progress", True, "Show a progress bar.", flag_values=fv)


def main(fv: flags.FlagValues, args) -> None:
    common.no_arguments(args)
    from tf_rmi.training import train_lib

    run_config = train_lib.config_from_command_line(common.values(fv, CONFIG_FLAGS), fv.config,
                                                     fv["set"].value)
    summary = train_lib.train(run_config, fv.run_dir, progress=fv.progress,
                              max_steps=fv.max_steps, split=fv.split, stop_on_sigterm=True)
    if summary["preempted"]:
        # Exit 0: the stop was asked for and the state is saved.
        print(f"Stopped by SIGTERM at step {summary['step']} of {summary['run_dir']}; "
              f"checkpoint {summary['checkpoint']}. Rerun the same command to resume.")
        return
    print(f"Trained {summary['run_dir']} to step {summary['step']} "
          f"(from {summary['start_step']}); latest checkpoint {summary['checkpoint']}")
