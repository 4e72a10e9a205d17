"""Evaluates a trained (or imported) run on an evaluation split.

    make eval DATASET=unc SPLIT=val CKPT=runs/unc_RMI_deeplab [CRF=1]
    tf_rmi evaluate --checkpoint=runs/unc_RMI_deeplab --split=val --crf

The architecture comes from the run's config.json; results are written to
experiments/results/<run>/<split>/ (results.json, results.md), or
<split>_crf/ with --crf and <split>_first<N>/ with --max_expressions=N, so
that such runs do not overwrite each other. The records are looked up where the
run's config.json says (relative to the directory training ran in) unless
--tfrecord_dir names them: a run directory evaluates from anywhere with it.
The work is `tf_rmi.evaluation.eval_lib.evaluate`.
"""
from absl import flags

from tf_rmi.cli import common


def define_flags(fv: flags.FlagValues) -> None:
    common.checkpoint(fv)
    flags.DEFINE_string("split", "val", "Evaluation split.", flag_values=fv)
    common.tfrecord_dir(fv, None, "TFRecord root (default: the run's).")
    flags.DEFINE_bool("crf", False, "Also score DenseCRF predictions (same pass).", flag_values=fv)
    flags.DEFINE_integer("crf_workers", 0, "DenseCRF worker processes (0 = one per CPU core, "
                         "1 = in this process); the scores do not depend on it.", flag_values=fv)
    flags.DEFINE_integer("max_expressions", 0, "Evaluate only the first N (0 = all).",
                         flag_values=fv)
    flags.DEFINE_bool("per_expression", False, "One full model call per expression.",
                      flag_values=fv)
    common.output_dir(fv, None, "Default: experiments/results/<run>/<split>[_crf][_first<N>].")
    flags.DEFINE_integer("visualize", 0, "Write Fig. 7 style figures of the first N.",
                         flag_values=fv)


def main(fv: flags.FlagValues, args) -> None:
    common.no_arguments(args)
    from tf_rmi.config import EvalConfig
    from tf_rmi.evaluation import eval_lib

    eval_cfg = EvalConfig(split=fv.split, crf=fv.crf, visualize=fv.visualize,
                          max_expressions=fv.max_expressions,
                          shared_trunk=not fv.per_expression, crf_workers=fv.crf_workers)
    results, out_dir = eval_lib.evaluate_run(fv.checkpoint, eval_cfg, fv.tfrecord_dir,
                                             fv.output_dir)
    print(eval_lib.console_summary(results))
    print(f"Results: {out_dir}/results.json, results.md")
