"""tf_rmi benchmarks: the multimodal head, a D+RMI training step, evaluation,
preprocessing and peak memory (benchmarks/suite.py), with the method of
benchmarks/harness.py. Needs a source checkout (the benchmarks/ package).

    make bench                                    # everything (~15 min on 2 CPU cores)
    tf_rmi bench --only=head,eval --repeats=5
    tf_rmi bench --quick                          # tiny sizes: a smoke run
    tf_rmi bench --precision=mixed_float16 --jit_compile   # GPU

Writes benchmarks/results/<date>-<host kind>.json and benchmarks/results/latest.md.
"""
from absl import flags

from tf_rmi.cli import common


def _suite():
    try:
        from benchmarks import suite
    except ImportError:
        raise FileNotFoundError("The benchmarks/ package is not importable: run `tf_rmi bench` "
                                "(or `make bench`) from the root of a tf_rmi source checkout"
                                ) from None
    return suite


def define_flags(fv: flags.FlagValues) -> None:
    flags.DEFINE_list("only", [], "Benchmarks to run, of head, train_step, demo_step, eval, "
                      "preprocess, input_pipeline, memory (benchmarks/suite.py; default all).",
                      flag_values=fv)
    flags.DEFINE_integer("repeats", 5, "Timed repeats per measurement (after one warm-up call).",
                         lower_bound=1, flag_values=fv)
    flags.DEFINE_integer("slow_repeats", 3, "Timed repeats for the training step, evaluation "
                         "and preprocessing.", lower_bound=1, flag_values=fv)
    flags.DEFINE_bool("quick", False, "Tiny sizes: checks that every benchmark runs (numbers "
                      "meaningless).", flag_values=fv)
    flags.DEFINE_enum("precision", "float32", ["float32", "mixed_float16", "mixed_bfloat16"],
                      "Keras dtype policy of the models (mixed precision on a GPU).",
                      flag_values=fv)
    flags.DEFINE_bool("jit_compile", False, "XLA-compile the head and training-step functions.",
                      flag_values=fv)
    flags.DEFINE_string("output_dir", "benchmarks/results", "Where the JSON and latest.md are "
                        "written.", flag_values=fv)


def main(fv: flags.FlagValues, args) -> None:
    common.no_arguments(args)
    suite = _suite()
    settings = suite.Settings(repeats=fv.repeats, slow_repeats=fv.slow_repeats, quick=fv.quick,
                              precision=fv.precision, jit_compile=fv.jit_compile)
    results = suite.run(fv.only or list(suite.BENCHMARKS), settings,
                        command=" ".join(["tf_rmi bench"] + [fv[name].serialize()
                                                             for name in sorted(fv)
                                                             if fv[name].present]),
                        log=lambda line: print(line, flush=True))
    paths = suite.write_results(results, fv.output_dir)
    print(suite.summary_markdown(results))
    print(f"Wrote {paths['json']} and {paths['markdown']}")
