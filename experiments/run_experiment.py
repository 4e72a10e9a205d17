"""Runs one row of the paper's Table 1 on one dataset: train, then evaluate.

    python -m experiments.run_experiment --config=experiments/configs/D_RMI_unc.json \
        --tfrecord_dir=data/tfrecords

Evaluation covers every split of the config with and without DenseCRF in one
pass; results land in experiments/results/<name>/<split>/ and the Table 1
summary (paper beside ours, every cell of the paper's Table 1) in
experiments/results/table1.md. `--table_only` rewrites that table from the
results already there, without training:

    python -m experiments.run_experiment --table_only
"""
import os

from absl import app, flags

from tf_rmi import experiment_lib
from tf_rmi.errors import clean_exit

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "Experiment config JSON (experiments/configs/).")
flags.DEFINE_string("tfrecord_dir", "data/tfrecords", "Where `make preprocess` wrote records.")
flags.DEFINE_string("runs_dir", "runs", "Parent of the run directory.")
flags.DEFINE_string("results_dir", "experiments/results", "Where results are written.")
flags.DEFINE_integer("iterations", None, "Override the iteration budget (smoke runs).")
flags.DEFINE_string("pretrained", None, "Replace the config's weight file (e.g. "
                    "checkpoints/resnet101_weights_tf_dim_ordering_tf_kernels.h5 for the R rows; "
                    "see checkpoints/README.md).")
flags.DEFINE_bool("table_only", False, "Only rewrite <results_dir>/table1.md from the "
                  "results already there (no training, no --config needed).")
flags.DEFINE_string("configs_dir", None, "Experiment configs (default: the --config's "
                    "folder, else experiments/configs).")


@clean_exit("run_experiment")
def main(argv):
    del argv
    if not FLAGS.table_only:
        if not FLAGS.config:
            raise app.UsageError("--config is required (or pass --table_only)")
        exp = experiment_lib.Experiment.load(FLAGS.config)
        experiment_lib.run_experiment(exp, FLAGS.tfrecord_dir, FLAGS.runs_dir,
                                      FLAGS.results_dir, FLAGS.iterations,
                                      pretrained=FLAGS.pretrained)
    configs_dir = FLAGS.configs_dir or (os.path.dirname(FLAGS.config) if FLAGS.config
                                        else os.path.join("experiments", "configs"))
    print(experiment_lib.write_table1(FLAGS.results_dir, configs_dir))


if __name__ == "__main__":
    app.run(main)
