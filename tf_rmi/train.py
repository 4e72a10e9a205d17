"""Trains RMI / the LSTM baseline: `python -m tf_rmi.train --dataset=unc --run_dir=runs/unc_RMI ...`.

On a run directory that already holds a checkpoint, training resumes from it
(the model flags must match the run's saved config.json). The run directory
gets config.json, a copy of the vocabulary (vocab.txt: the run predicts and
exports from anywhere), checkpoints/ and logs/. SIGTERM saves a checkpoint at
the current step and exits 0; `--strategy=multi_worker` reads TF_CONFIG (see
README). After the flags, `--config=<partial JSON>` then each
`--set=section.field=value` set the fields they name (any RunConfig field,
also those without a flag). `--help` lists the flags.
"""
from absl import app, flags

from tf_rmi import train_lib
from tf_rmi.errors import clean_exit

flags.DEFINE_string("dataset", "shapes", "One of unc, unc+, Gref, Gref_umd, referit, shapes.")
flags.DEFINE_string("tfrecord_dir", "data/tfrecords", "Holds <dataset>/<split>-*.tfrecord.")
flags.DEFINE_string("run_dir", None, "Run directory: config.json, checkpoints/, logs/.")
flags.DEFINE_string("split", None, "Training split (default: trainval for referit, else train).")
flags.DEFINE_string("vocab_file", None, "Vocabulary (default: the manifest's).")
flags.DEFINE_enum("model", "RMI", ["RMI", "LSTM"], "RMI or the LSTM baseline.")
flags.DEFINE_enum("weights", "deeplab", ["deeplab", "resnet"], "Visual feature: res5c + conv0 or fc1000.")
flags.DEFINE_enum("trunk", "resnet101", ["resnet101", "small"], "Frozen ResNet-101 or a small CPU trunk.")
flags.DEFINE_integer("small_trunk_width", 32, "Base width of the small trunk.")
flags.DEFINE_integer("input_size", 320, "model.input_size: image side (records must match).")
flags.DEFINE_integer("num_words", 20, "model.num_words, T: word ids per expression (records "
                     "must match).")
flags.DEFINE_integer("iterations", None, "Iteration budget (default: the dataset's, config.DATASETS).")
flags.DEFINE_integer("snapshot_every", None, "Steps between checkpoints (default per dataset).")
flags.DEFINE_integer("batch_size", 1, "Batch size PER REPLICA (the original: 1).")
flags.DEFINE_float("learning_rate", 2.5e-4, "Start of the polynomial decay (ends at 1e-5).")
flags.DEFINE_string("pretrained", None, "Trunk weights: DeepLab/ResNet checkpoint or .npy, Keras .h5.")
flags.DEFINE_integer("keep_checkpoints", None, "Checkpoints kept (default per dataset: every "
                     "snapshot for the paper datasets, as the original).")
flags.DEFINE_enum("strategy", "default", list(train_lib.STRATEGIES), "tf.distribute strategy.")
flags.DEFINE_enum("precision", "float32", list(train_lib.PRECISIONS), "Keras dtype policy.")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the forward/backward pass.")
flags.DEFINE_integer("seed", 0, "Seed of initialisation and data order.")
flags.DEFINE_bool("deterministic", False, "Op determinism + seeds: reruns and killed-and-resumed "
                  "runs end bit-identical (slower; see README).")
flags.DEFINE_integer("visual_dim", 1000, "D_I: conv0 / fc1000 output channels.")
flags.DEFINE_integer("embed_dim", 1000, "Word embedding size.")
flags.DEFINE_integer("lstm_units", 1000, "Language LSTM units.")
flags.DEFINE_integer("mlstm_units", 500, "Multimodal LSTM units (RMI) / conv1 width (LSTM).")
flags.DEFINE_integer("lr_decay_steps", None, "Polynomial-decay length (default: the original's "
                     "750000; shapes: the budget; 0 = the budget).")
flags.DEFINE_integer("log_every", 20, "Steps between TensorBoard scalar writes.")
flags.DEFINE_integer("eval_every", 0, "Score the validation split every N steps (overall IoU, "
                     "P@0.5 to TensorBoard; the best step is kept in <run_dir>/best/). 0 = never.")
flags.DEFINE_string("eval_split", "val", "Split scored by --eval_every.")
flags.DEFINE_integer("eval_max_expressions", 0, "Expressions scored per validation (0 = all).")
flags.DEFINE_float("small_trunk_input_scale", 1.0, "Small trunk only: input multiplier.")
flags.DEFINE_enum("small_trunk_norm", "none", ["none", "group"], "Small trunk only: normalisation.")
flags.DEFINE_bool("small_trunk_residual", False, "Small trunk only: identity shortcuts.")
flags.DEFINE_bool("small_trunk_aligned", False, "Small trunk only: cell k centred on pixel 8k.")
flags.DEFINE_bool("small_trunk_standardize", False, "Small trunk only: linear last conv, output "
                  "standardised per image and channel over the cells.")
flags.DEFINE_bool("small_trunk_context", False, "Small trunk only: append the maxima over the "
                  "cells left of, right of, above and below each cell.")
flags.DEFINE_float("trunk_learning_rate_mult", 1.0, "Small trunk only: its variables step at "
                   "learning_rate x this.")
flags.DEFINE_string("config", None, "A partial run config: JSON with some fields of the sections "
                    "data, model, train (a run's config.json is one), applied after the flags.")
flags.DEFINE_multi_string("set", [], "section.field=value (sections data, model, train), e.g. "
                          "train.learning_rate=1e-3; repeatable; applied after --config.")
flags.DEFINE_integer("max_steps", None, "Stop (with a checkpoint) once this step is reached.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
flags.mark_flag_as_required("run_dir")

FLAGS = flags.FLAGS
_CONFIG_FLAGS = ("dataset", "tfrecord_dir", "vocab_file", "model", "weights", "trunk",
                 "small_trunk_width", "input_size", "num_words", "iterations", "snapshot_every", "batch_size",
                 "learning_rate", "pretrained", "keep_checkpoints", "strategy", "precision",
                 "jit_compile", "seed", "visual_dim", "embed_dim", "lstm_units", "mlstm_units",
                 "log_every", "lr_decay_steps", "eval_every", "eval_split", "eval_max_expressions",
                 "small_trunk_input_scale", "small_trunk_norm", "small_trunk_residual",
                 "small_trunk_aligned", "small_trunk_standardize", "small_trunk_context",
                 "trunk_learning_rate_mult", "deterministic")


@clean_exit("train")
def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    config = train_lib.config_from_command_line(
        {name: FLAGS[name].value for name in _CONFIG_FLAGS}, FLAGS.config, FLAGS["set"].value)
    summary = train_lib.train(config, FLAGS.run_dir, progress=FLAGS.progress,
                              max_steps=FLAGS.max_steps, split=FLAGS.split,
                              stop_on_sigterm=True)
    if summary["preempted"]:
        # Exit 0: the stop was asked for and the state is saved.
        print(f"Stopped by SIGTERM at step {summary['step']} of {summary['run_dir']}; "
              f"checkpoint {summary['checkpoint']}. Rerun the same command to resume.")
        return
    print(f"Trained {summary['run_dir']} to step {summary['step']} "
          f"(from {summary['start_step']}); latest checkpoint {summary['checkpoint']}")


def run():
    from tf_rmi.usage import run_with_help
    run_with_help(main, __name__, __doc__)


if __name__ == "__main__":
    run()
