"""tf_rmi benchmarks: the multimodal head, a D+RMI training step, evaluation,
preprocessing and peak memory (benchmarks/suite.py), with the method of
benchmarks/harness.py.

    make bench                                    # everything (~15 min on 2 CPU cores)
    python -m benchmarks.run_benchmarks --only=head,eval --repeats=5
    python -m benchmarks.run_benchmarks --quick   # tiny sizes: a smoke run
    python -m benchmarks.run_benchmarks --precision=mixed_float16 --jit_compile   # GPU

Writes benchmarks/results/<date>-<host kind>.json and benchmarks/results/latest.md.
"""
from __future__ import annotations

import sys

from absl import app, flags

from benchmarks import suite

FLAGS = flags.FLAGS
flags.DEFINE_list("only", [], f"Benchmarks to run, from {list(suite.BENCHMARKS)} (default all).")
flags.DEFINE_integer("repeats", 5, "Timed repeats per measurement (after one warm-up call).", lower_bound=1)
flags.DEFINE_integer("slow_repeats", 3, "Timed repeats for the training step, evaluation and "
                     "preprocessing.", lower_bound=1)
flags.DEFINE_bool("quick", False, "Tiny sizes: checks that every benchmark runs (numbers meaningless).")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_float16", "mixed_bfloat16"],
                  "Keras dtype policy of the models (mixed precision on a GPU).")
flags.DEFINE_bool("jit_compile", False, "XLA-compile the head and training-step functions.")
flags.DEFINE_string("output_dir", "benchmarks/results", "Where the JSON and latest.md are written.")


def main(argv):
    del argv
    settings = suite.Settings(repeats=FLAGS.repeats, slow_repeats=FLAGS.slow_repeats,
                              quick=FLAGS.quick, precision=FLAGS.precision,
                              jit_compile=FLAGS.jit_compile)
    try:
        results = suite.run(FLAGS.only or list(suite.BENCHMARKS), settings,
                            command="python -m benchmarks.run_benchmarks " + " ".join(sys.argv[1:]),
                            log=lambda line: print(line, flush=True))
    except ValueError as err:
        sys.exit(str(err))
    paths = suite.write_results(results, FLAGS.output_dir)
    print(suite.summary_markdown(results))
    print(f"Wrote {paths['json']} and {paths['markdown']}")


if __name__ == "__main__":
    app.run(main)
