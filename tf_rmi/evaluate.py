"""Evaluates a trained (or imported) run on an evaluation split.

    make eval DATASET=unc SPLIT=val CKPT=runs/unc_RMI_deeplab [CRF=1]
    python -m tf_rmi.evaluate --checkpoint=runs/unc_RMI_deeplab --split=val --crf

The architecture comes from the run's config.json; results are written to
experiments/results/<run>/<split>/ (results.json, results.md), or
<split>_crf/ with --crf and <split>_first<N>/ with --max_expressions=N, so
that such runs do not overwrite each other. The records are looked up where the
run's config.json says (relative to the directory training ran in) unless
--tfrecord_dir names them: a run directory evaluates from anywhere with it.
"""
import os

from absl import flags

from tf_rmi.errors import clean_exit

FLAGS = flags.FLAGS
flags.DEFINE_string("checkpoint", None, "Run directory or checkpoint prefix.")
flags.DEFINE_string("split", "val", "Evaluation split.")
flags.DEFINE_string("tfrecord_dir", None, "TFRecord root (default: the run's).")
flags.DEFINE_bool("crf", False, "Also score DenseCRF predictions (same pass).")
flags.DEFINE_integer("crf_workers", 0, "DenseCRF worker processes (0 = one per CPU core, "
                     "1 = in this process); the scores do not depend on it.")
flags.DEFINE_integer("max_expressions", 0, "Evaluate only the first N (0 = all).")
flags.DEFINE_bool("per_expression", False, "One full model call per expression.")
flags.DEFINE_string("output_dir", None, "Default: experiments/results/<run>/<split>[_crf]"
                    "[_first<N>].")
flags.DEFINE_integer("visualize", 0, "Write Fig. 7 style figures of the first N.")
flags.mark_flag_as_required("checkpoint")


@clean_exit("evaluate")
def main(argv):
    del argv
    from tf_rmi import eval_lib
    from tf_rmi.config import EvalConfig, RunConfig
    from tf_rmi.run_dir import resolve_checkpoint, restore_model

    run_config = RunConfig.load(resolve_checkpoint(FLAGS.checkpoint)[0])
    records = FLAGS.tfrecord_dir or run_config.data.tfrecord_dir
    if not os.path.isdir(records):
        raise FileNotFoundError(
            f"No records directory {records}" + ("" if FLAGS.tfrecord_dir else
            " (the run's tfrecord_dir" + ("" if os.path.isabs(records) else
            f", relative to where training ran; looked up from {os.getcwd()}") + ")")
            + ": pass --tfrecord_dir=<the directory holding "
            f"{run_config.data.dataset}/{FLAGS.split}-*.tfrecord>")
    model, run_config, prefix = restore_model(FLAGS.checkpoint)
    out_dir = FLAGS.output_dir or eval_lib.default_output_dir(
        prefix, FLAGS.split, crf=FLAGS.crf, max_expressions=FLAGS.max_expressions)
    eval_cfg = EvalConfig(split=FLAGS.split, crf=FLAGS.crf, visualize=FLAGS.visualize,
                          max_expressions=FLAGS.max_expressions,
                          shared_trunk=not FLAGS.per_expression, crf_workers=FLAGS.crf_workers)
    results = eval_lib.evaluate(model, run_config, eval_cfg, FLAGS.tfrecord_dir,
                                out_dir=out_dir, checkpoint=prefix)
    print(eval_lib.console_summary(results))
    print(f"Results: {out_dir}/results.json, results.md")


def run():
    from tf_rmi.usage import run_with_help
    run_with_help(main, __name__, __doc__)


if __name__ == "__main__":
    run()
