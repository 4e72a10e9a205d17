"""Runs one row of the paper's Table 1 on one dataset: train, then evaluate.

    tf_rmi experiment --config=experiments/configs/D_RMI_unc.json \\
        --tfrecord_dir=data/tfrecords

Evaluation covers every split of the config with and without DenseCRF in one
pass; results land in experiments/results/<name>/<split>/ and the Table 1
summary (paper beside ours, every cell of the paper's Table 1) in
experiments/results/table1.md. `--table_only` rewrites that table from the
results already there, without training:

    tf_rmi experiment --table_only

The work is `tf_rmi.recipes.experiment_lib`.
"""
import os

from absl import app, flags

from tf_rmi.cli import common


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_string("config", None, "Experiment config JSON (experiments/configs/).",
                        flag_values=fv)
    common.tfrecord_dir(fv, help="Where `make preprocess` wrote records.")
    flags.DEFINE_string("runs_dir", "runs", "Parent of the run directory.", flag_values=fv)
    flags.DEFINE_string("results_dir", "experiments/results", "Where results are written.",
                        flag_values=fv)
    flags.DEFINE_integer("iterations", None, "Override the iteration budget (smoke runs).",
                         flag_values=fv)
    flags.DEFINE_string("pretrained", None, "Replace the config's weight file (e.g. "
                        "checkpoints/resnet101_weights_tf_dim_ordering_tf_kernels.h5 for the R "
                        "rows; see checkpoints/README.md).", flag_values=fv)
    flags.DEFINE_bool("table_only", False, "Only rewrite <results_dir>/table1.md from the "
                      "results already there (no training, no --config needed).", flag_values=fv)
    flags.DEFINE_string("configs_dir", None, "Experiment configs (default: the --config's "
                        "folder, else experiments/configs).", flag_values=fv)


def main(fv: flags.FlagValues, args) -> None:
    common.no_arguments(args)
    from tf_rmi.recipes import experiment_lib

    if not fv.table_only:
        if not fv.config:
            raise app.UsageError("--config is required (or pass --table_only)")
        exp = experiment_lib.Experiment.load(fv.config)
        experiment_lib.run_experiment(exp, fv.tfrecord_dir, fv.runs_dir, fv.results_dir,
                                      fv.iterations, pretrained=fv.pretrained)
    configs_dir = fv.configs_dir or (os.path.dirname(fv.config) if fv.config
                                     else os.path.join("experiments", "configs"))
    print(experiment_lib.write_table1(fv.results_dir, configs_dir))
