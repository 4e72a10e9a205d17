"""Benchmark method: warm-up, several repeats, the median; side-by-side comparisons.

Library functions only (no flags, no I/O at import); `run_benchmarks.py` is the
entry point.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import time
from typing import Callable, Dict, List, Sequence


def measure(fn: Callable[[], object], warmup: int = 1, repeats: int = 5) -> Dict[str, float]:
    """Seconds per call of `fn`: median, min, max over `repeats` timed calls
    after `warmup` untimed ones (tracing and caches)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return summarize(times)


def summarize(times: Sequence[float]) -> Dict[str, float]:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "repeats": len(times)}


def interleaved_compare(fns: Dict[str, Callable[[], object]], warmup: int = 1,
                        repeats: int = 5) -> Dict[str, Dict[str, float]]:
    """Times several functions with their repeats interleaved (A B A B ...), so
    that load changes on the machine affect all of them alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: Dict[str, List[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: summarize(t) for name, t in times.items()}


def matmul_gflops(n: int = 2048, warmup: int = 2, repeats: int = 5) -> Dict[str, float]:
    """The machine's float32 matmul rate: n x n times n x n, 2 n^3 FLOP per call."""
    import tensorflow as tf

    a = tf.random.normal([n, n])
    b = tf.random.normal([n, n])
    fn = tf.function(lambda: tf.linalg.matmul(a, b))
    result = measure(lambda: fn().numpy(), warmup, repeats)
    result["gflops"] = 2 * n ** 3 / result["median_s"] / 1e9
    result["n"] = n
    return result


def graph_flops(concrete_function) -> int:
    """Float operations of a traced function's graph, as TensorFlow's profiler
    counts them (convolutions and matmuls with static shapes; elementwise ops
    with registered statistics)."""
    from tensorflow.python.profiler import model_analyzer, option_builder

    opts = option_builder.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = model_analyzer.profile(concrete_function.graph, options=opts)
    return int(info.total_float_ops)


def machine() -> Dict[str, object]:
    import tensorflow as tf

    return {"platform": platform.platform(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "cpus": os.cpu_count(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}


def write_json(path: str, data: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        json.dump(data, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(path + ".tmp", path)


def markdown_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
