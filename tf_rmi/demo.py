"""`make demo`: the whole pipeline on the embedded synthetic set, on a laptop CPU.

Flags fill `demo_lib.DemoConfig`; everything else is `tf_rmi.demo_lib`.

    python -m tf_rmi.demo [--steps=N] [--eval_every=N] [--output_dir=experiments/demo]
                          [--nopretrain_trunk] [--pretrain_steps=N]
"""
import dataclasses

from absl import app, flags

from tf_rmi import demo_lib
from tf_rmi.errors import clean_exit

FLAGS = flags.FLAGS
flags.DEFINE_string("output_dir", "experiments/demo", "Tables and figures.")
flags.DEFINE_string("work_dir", "experiments/demo/work", "Records and runs (git-ignored).")
flags.DEFINE_integer("steps", None, "Training steps per model (default: DemoConfig.steps).")
flags.DEFINE_integer("eval_every", None, "Validation interval in steps (default: DemoConfig's).")
flags.DEFINE_integer("num_train_images", None, "Synthetic training images (default: DemoConfig's).")
flags.DEFINE_integer("num_test_images", None, "Synthetic test images (default: DemoConfig's).")
flags.DEFINE_bool("crf", True, "Also score DenseCRF predictions.")
flags.DEFINE_bool("pretrain_trunk", None, "Pretrain the small trunk and freeze it (default: "
                  "DemoConfig's); --nopretrain_trunk trains it from scratch with the head.")
flags.DEFINE_integer("pretrain_steps", None, "Trunk pretraining steps (default: DemoConfig's).")


@clean_exit("demo")
def main(argv):
    del argv
    cfg = demo_lib.DemoConfig()
    if FLAGS.steps:
        cfg = dataclasses.replace(cfg, steps=FLAGS.steps)
    if FLAGS.eval_every is not None:
        cfg = dataclasses.replace(cfg, eval_every=FLAGS.eval_every)
    if FLAGS.pretrain_trunk is not None:
        cfg = dataclasses.replace(cfg, pretrain_trunk=FLAGS.pretrain_trunk)
    if FLAGS.pretrain_steps:
        cfg = dataclasses.replace(cfg, pretrain_steps=FLAGS.pretrain_steps)
    summary = demo_lib.run_demo(cfg, FLAGS.output_dir, FLAGS.work_dir, FLAGS.crf,
                                FLAGS.num_train_images, FLAGS.num_test_images)
    print("\n" + demo_lib.summary_markdown(summary))
    print(f"Tables and figures: {FLAGS.output_dir}/")


if __name__ == "__main__":
    app.run(main)
