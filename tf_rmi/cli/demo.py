"""`make demo`: the whole pipeline on the embedded synthetic set, on a laptop CPU.

    tf_rmi demo [--steps=N] [--eval_every=N] [--output_dir=experiments/demo]
                [--nopretrain_trunk] [--pretrain_steps=N]

Flags fill `tf_rmi.recipes.demo_lib.DemoConfig` (unset: its defaults); the
work is `demo_lib.run_demo`.
"""
import dataclasses

from absl import flags

from tf_rmi.cli import common


def define_flags(fv: flags.FlagValues) -> None:
    common.output_dir(fv, "experiments/demo", "Tables and figures.")
    flags.DEFINE_string("work_dir", "experiments/demo/work", "Records and runs (git-ignored).",
                        flag_values=fv)
    flags.DEFINE_integer("steps", None, "Training steps per model (default: DemoConfig.steps).",
                         flag_values=fv)
    flags.DEFINE_integer("eval_every", None, "Validation interval in steps (default: "
                         "DemoConfig's).", flag_values=fv)
    flags.DEFINE_integer("num_train_images", None, "Synthetic training images (default: "
                         "DemoConfig's).", flag_values=fv)
    flags.DEFINE_integer("num_test_images", None, "Synthetic test images (default: "
                         "DemoConfig's).", flag_values=fv)
    flags.DEFINE_bool("crf", True, "Also score DenseCRF predictions.", flag_values=fv)
    flags.DEFINE_bool("pretrain_trunk", None, "Pretrain the small trunk and freeze it (default: "
                      "DemoConfig's); --nopretrain_trunk trains it from scratch with the head.",
                      flag_values=fv)
    flags.DEFINE_integer("pretrain_steps", None, "Trunk pretraining steps (default: "
                         "DemoConfig's).", flag_values=fv)


def main(fv: flags.FlagValues, args) -> None:
    common.no_arguments(args)
    from tf_rmi.recipes import demo_lib

    cfg = demo_lib.DemoConfig()
    # 0 steps means "the default", as unset; --eval_every=0 turns validation off.
    changes = {"steps": fv.steps or None, "pretrain_steps": fv.pretrain_steps or None,
               "eval_every": fv.eval_every, "pretrain_trunk": fv.pretrain_trunk}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in changes.items() if v is not None})
    summary = demo_lib.run_demo(cfg, fv.output_dir, fv.work_dir, fv.crf, fv.num_train_images,
                                fv.num_test_images)
    print("\n" + demo_lib.summary_markdown(summary))
    print(f"Tables and figures: {fv.output_dir}/")
