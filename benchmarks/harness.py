"""Benchmark method: warm-up, several repeats, the median; side-by-side comparisons.

Library functions only (no flags, no I/O at import); `run_benchmarks.py` is the
entry point and `suite.py` holds the measurements.
"""
from __future__ import annotations

import collections
import glob
import json
import os
import platform
import re
import statistics
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence


def summarize(times: Sequence[float]) -> Dict[str, float]:
    """Median, min and max of per-call seconds."""
    if not times:
        raise ValueError("summarize needs at least one timing: use repeats >= 1")
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times),
            "repeats": len(times)}


def measure(fn: Callable[[], object], warmup: int = 1, repeats: int = 5) -> Dict[str, float]:
    """Seconds per call of `fn`: median, min, max over `repeats` timed calls
    after `warmup` untimed ones (tf.function tracing, caches)."""
    return interleaved_compare({"fn": fn}, warmup, repeats)["fn"]


def interleaved_compare(fns: Dict[str, Callable[[], object]], warmup: int = 1,
                        repeats: int = 5) -> Dict[str, Dict[str, float]]:
    """Times several functions with their repeats interleaved (A B A B ...), so
    that load changes on the machine affect all of them alike. `fn` must block
    until its result is computed (call `.numpy()` on TensorFlow results)."""
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


def matmul_gflops(n: int = 2048, warmup: int = 2, repeats: int = 5,
                  dtype: str = "float32") -> Dict[str, float]:
    """The machine's matmul rate: n x n times n x n, 2 n^3 FLOP per call."""
    import tensorflow as tf

    a = tf.cast(tf.random.normal([n, n]), dtype)
    b = tf.cast(tf.random.normal([n, n]), dtype)
    fn = tf.function(lambda: tf.linalg.matmul(a, b))
    result = measure(lambda: fn().numpy(), warmup, repeats)
    result.update(gflops=2 * n ** 3 / result["median_s"] / 1e9, n=n, dtype=dtype)
    return result


def _profile_graph(graph) -> int:
    from tensorflow.python.profiler import model_analyzer, option_builder

    opts = option_builder.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return int(model_analyzer.profile(graph, options=opts).total_float_ops)


def graph_flops(concrete_function, branch_taken: Optional[Callable[[str], Optional[bool]]] = None
                ) -> int:
    """Float operations of a traced function, as TensorFlow's profiler
    (float_operation) counts them: convolutions and matmuls with static shapes,
    elementwise ops with registered statistics.

    The profiler does not look inside `tf.cond` branches (they are separate
    functions), so `If` ops are followed here: `branch_taken(op_name)` says
    which branch runs (True: then, False: else, None: count the larger one);
    without it, `If` ops count nothing.
    """
    def count(graph) -> int:
        total = _profile_graph(graph)
        if branch_taken is None:
            return total
        for op in graph.get_operations():
            if op.type not in ("If", "StatelessIf"):
                continue
            branches = [count(graph._get_function(op.get_attr(attr).name).graph)
                        for attr in ("then_branch", "else_branch")]
            taken = branch_taken(op.name)
            total += max(branches) if taken is None else branches[0 if taken else 1]
        return total

    return count(concrete_function.graph)


def _xplane_op_times(path: str) -> Dict[str, float]:
    """Self time in seconds per TensorFlow op type from one profiler XSpace file."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    totals: Dict[str, float] = collections.defaultdict(float)
    for plane in space.planes:
        for line in plane.lines:
            # Op events are named "<node>:<type>" (display name: the type); a
            # stack gives self time where events nest (function-call ops).
            events = []
            for ev in line.events:
                meta = plane.event_metadata[ev.metadata_id]
                if ":" in meta.name and meta.display_name and ev.duration_ps > 0:
                    events.append((ev.offset_ps, ev.offset_ps + ev.duration_ps, meta.display_name))
            events.sort()
            stack: List[list] = []
            for start, end, kind in events:
                while stack and stack[-1][1] <= start:
                    done = stack.pop()
                    totals[done[2]] += done[3] / 1e12
                if stack:
                    stack[-1][3] -= end - start
                stack.append([start, end, kind, end - start])
            for done in stack:
                totals[done[2]] += done[3] / 1e12
    return dict(totals)


def op_profile(fn: Callable[[], object], calls: int = 1, top: int = 10) -> Dict[str, object]:
    """Where `fn`'s time goes, by TensorFlow op type, from `tf.profiler` traces
    (host_tracer_level 3) of `calls` calls; `fn` must already be traced.

    Returns {"ops": [[type, seconds per call, share], ...] (the `top` largest
    self times, summed over threads), "op_seconds": all op self time per call,
    "wall_seconds": wall time per call}.
    """
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as logdir:
        options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=3,
                                                           python_tracer_level=0)
        tf.profiler.experimental.start(logdir, options=options)
        start = time.perf_counter()
        try:
            for _ in range(calls):
                fn()
        finally:
            wall = time.perf_counter() - start
            tf.profiler.experimental.stop()
        totals: Dict[str, float] = collections.defaultdict(float)
        for path in glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True):
            for kind, seconds in _xplane_op_times(path).items():
                totals[kind] += seconds
    op_seconds = sum(totals.values()) / calls
    ranked = sorted(totals.items(), key=lambda kv: -kv[1])[:top]
    return {"ops": [[kind, s / calls, s / calls / op_seconds if op_seconds else 0.0]
                    for kind, s in ranked],
            "op_seconds": op_seconds, "wall_seconds": wall / calls}


def host_kind() -> str:
    """A short name of the machine kind for result file names: `gpu-<name>` or `cpu<N>`."""
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        name = details.get("device_name", "gpu")
        return "gpu-" + re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()
    return f"cpu{os.cpu_count()}"


def machine() -> Dict[str, object]:
    import tensorflow as tf

    return {"platform": platform.platform(), "python": platform.python_version(),
            "tensorflow": tf.__version__, "cpus": os.cpu_count(), "host_kind": host_kind(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]}


def write_text(path: str, text: str) -> None:
    """Writes `text` to `path` atomically (temporary name, then os.replace)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_json(path: str, data: dict) -> None:
    write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def target_verdict(value: float, target: float, higher_is_better: bool = True) -> str:
    """'yes' or 'no, by X%' (how far `value` is from `target`, relative to the target)."""
    met = value >= target if higher_is_better else value <= target
    if met:
        return "yes"
    return f"no, by {100 * abs(target - value) / target:.1f}%"


def markdown_table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
