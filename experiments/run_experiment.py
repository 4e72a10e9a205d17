"""Runs one row of the paper's Table 1 on one dataset: train, then evaluate.

    python -m experiments.run_experiment --config=experiments/configs/D_RMI_unc.json \
        --tfrecord_dir=data/tfrecords

Evaluation covers every split of the config with and without DenseCRF in one
pass; results land in experiments/results/<name>/<split>/ and the Table 1
summary (paper beside ours) in experiments/results/table1.md.
"""
import os

from absl import app, flags

from tf_rmi import experiment_lib

FLAGS = flags.FLAGS
flags.DEFINE_string("config", None, "Experiment config JSON (experiments/configs/).")
flags.DEFINE_string("tfrecord_dir", "data/tfrecords", "Where `make preprocess` wrote records.")
flags.DEFINE_string("runs_dir", "runs", "Parent of the run directory.")
flags.DEFINE_string("results_dir", "experiments/results", "Where results are written.")
flags.DEFINE_integer("iterations", None, "Override the iteration budget (smoke runs).")
flags.mark_flag_as_required("config")


def main(argv):
    del argv
    exp = experiment_lib.Experiment.load(FLAGS.config)
    experiment_lib.run_experiment(exp, FLAGS.tfrecord_dir, FLAGS.runs_dir,
                                  FLAGS.results_dir, FLAGS.iterations)
    configs_dir = os.path.dirname(FLAGS.config) or "."
    table = experiment_lib.results_table(
        experiment_lib.collect_results(FLAGS.results_dir, configs_dir))
    path = os.path.join(FLAGS.results_dir, "table1.md")
    with open(path + ".tmp", "w") as f:
        f.write(table)
    os.replace(path + ".tmp", path)
    print(table)


if __name__ == "__main__":
    app.run(main)
