"""Raw dataset -> sharded TFRecords (the original's `build_batches.py`).

Output layout (names and manifest file: `tf_rmi.data.shards`; read by
`tf_rmi.data.pipeline`):

    <output_dir>/<dataset>/<split>-NNNNN-of-MMMMM.tfrecord
    <output_dir>/<dataset>/manifest.json
    <output_dir>/<dataset>/vocabulary.txt     (only when the vocabulary is built)

One record per referring expression, as one `.npz` of the original: training
splits (`config.TRAIN_SPLITS`; the original tested `'train' in setname`) are
resized-and-padded to `image_size` (image and mask, `image_ops`), evaluation
splits keep the original image and mask. Grayscale / RGBA images become RGB.
Images and masks are stored as PNG (lossless), words as the first
`num_words` vocabulary ids front-padded with 0.

Training splits are written in a seeded random order (`train_order="random"`,
the default: `training_permutation(n, TRAIN_ORDER_SEED)` of the source's
order), so that the training stream, which reads a few shards at a time
through a shuffle buffer, is close to the original's per-epoch permutation of
all samples (`tf_rmi.data.order_stats` measures it); `train_order="file"`
keeps the source's order (each ref's sentences together; faster to write,
since a worker then resizes each ref's image once). Evaluation splits are
grouped by image. Expressions are cut into contiguous shards in that order,
and shards into chunks of about `DEFAULT_CHUNK_SIZE` expressions (never
splitting one ref's consecutive sentences); each chunk is one task for a
worker process, which loads, resizes and encodes its samples and returns the
serialized records. The parent writes each shard from its chunks, in order,
to `<shard>.tmp-<pid>` and renames it once the last chunk is in, so a shard
file is either complete or absent; it keeps `manifest.json` up to date after
every shard, so a rerun after an interruption rewrites only the shards that
are missing or whose checksum no longer matches (stale temporaries are
removed). Output bytes are a function of the input and the settings only (not
of the number of workers or the chunk size).

The manifest (`shards.write_manifest`, rewritten atomically after every shard)
holds `format`, `schema_version`, `dataset`, `vocab_file` (relative to the
dataset directory when built here, else absolute), `vocab_size`,
`vocab_sha256`, `settings` (`image_size`, `num_words`, `train_order`,
`train_order_seed`, plus e.g. `vocab_built_from`, `min_count`, the shapes
`seed` and image counts) and per split `count` (records written),
`expressions`, `skipped` / `degenerate` {reason: n}, `degenerate_records`,
`padded`, `num_shards`, `complete`, `fingerprint` and `shards` [{`index`,
`file`, `records`, `sha256`, `skipped`, `skip_examples`, `degenerate`,
`degenerate_records`}]. Records written with another header (format, schema,
dataset, vocabulary, settings) are never mixed into a directory: it is refused.

Bad samples (missing or undecodable image, missing or undecodable
annotation, empty or undecodable sentence) are skipped and counted by
`DataError.reason`; `strict=True` raises the first one instead. Degenerate
samples are another matter: the original scores EVERY sample of an evaluation
split, so on evaluation splits a sample whose mask is empty, whose mask and
image differ in size, or whose polygon has a part of fewer than 6 coordinates
is written (flagged with its reasons in the record's `degenerate` key, counted
in the manifest's `degenerate`) and scored as the original scores it. On
training splits an empty mask (also after resizing) or a size mismatch is
skipped and counted; a short polygon that still gives a mask is kept and
counted as degenerate.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import sys
import time
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tf_rmi import atomic_io, config
from tf_rmi.data import image_ops, schema, shards, text
from tf_rmi.data.sources import DataError, Expression, Source

BUILT_VOCAB_NAME = "vocabulary.txt"
DEFAULT_RECORDS_PER_SHARD = 256
TRAIN_ORDERS = ("random", "file")
TRAIN_ORDER_SEED = 0  # recorded in the manifest's settings
MANIFEST_FORMAT = "tf_rmi.tfrecords/1"


# ----------------------------------------------------------------------------
# Results


@dataclasses.dataclass
class SplitStats:
    """What `build_split` wrote (or found complete) for one split."""

    split: str
    expressions: int  # expressions the source lists
    count: int  # records in the shards
    skipped: Dict[str, int]  # reason -> number of skipped expressions
    skip_examples: Dict[str, str]  # reason -> the first message of that reason
    shards: List[Dict[str, Any]]  # {index, file, records, sha256, skipped, skip_examples}
    padded: bool
    written_shards: int  # shards written by this call
    reused_shards: int  # complete shards kept from an earlier run
    seconds: float
    # reason -> records written although degenerate (scored on evaluation splits)
    degenerate: Dict[str, int] = dataclasses.field(default_factory=dict)
    degenerate_records: int = 0  # records with at least one reason

    def summary(self) -> str:
        kind = "resized-and-padded" if self.padded else "original size"
        lines = [f"{self.split}: {self.count} of {self.expressions} expressions written "
                 f"({kind}) in {len(self.shards)} shards ({self.written_shards} written, "
                 f"{self.reused_shards} already complete) in {self.seconds:.1f}s"]
        if self.skipped:
            total = sum(self.skipped.values())
            parts = ", ".join(f"{reason} {n}" for reason, n in sorted(self.skipped.items()))
            lines.append(f"  skipped {total}: {parts}")
            for reason, message in sorted(self.skip_examples.items()):
                lines.append(f"    e.g. {message}")
        if self.degenerate_records:
            parts = ", ".join(f"{reason} {n}" for reason, n in sorted(self.degenerate.items()))
            what = "scored but degenerate" if not self.padded else "kept but degenerate"
            lines.append(f"  {what}: {self.degenerate_records} ({parts})")
        return "\n".join(lines)


def format_summary(stats: Dict[str, SplitStats]) -> str:
    return "\n".join(s.summary() for s in stats.values())


# ----------------------------------------------------------------------------
# Planning helpers


def default_num_shards(count: int, records_per_shard: int = DEFAULT_RECORDS_PER_SHARD) -> int:
    """ceil(count / records_per_shard), at least 1 (about 50 MB per training shard)."""
    return max(1, math.ceil(count / records_per_shard))


def training_permutation(count: int, seed: int = TRAIN_ORDER_SEED) -> np.ndarray:
    """The order training records are written in: a permutation of range(count)
    by numpy's legacy `RandomState(seed)` (its stream is frozen across numpy
    versions, so the output bytes are too)."""
    return np.random.RandomState(int(seed)).permutation(int(count))


def shard_ranges(count: int, num_shards: int) -> List[Tuple[int, int]]:
    """Contiguous [start, stop) ranges of near-equal size covering range(count).

    Contiguous keeps the sentences of one ref together, so a worker resizes
    each image once.
    """
    if num_shards < 1:
        raise ValueError(f"num_shards must be >= 1, got {num_shards}")
    return [(i * count // num_shards, (i + 1) * count // num_shards) for i in range(num_shards)]


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_sha256(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf-8")).hexdigest()


def _expressions_sha256(expressions: Sequence[Expression]) -> str:
    digest = hashlib.sha256()
    for e in expressions:
        sentence = e.sentence if isinstance(e.sentence, str) else repr(e.sentence)
        digest.update(json.dumps([e.image_id, e.ref_id, e.ann_id, e.sent_id, sentence,
                                  e.split]).encode("utf-8"))
    return digest.hexdigest()


def _remove_stale_files(out_dir: str, split: str, num_shards: int) -> List[str]:
    """Deletes interrupted temporaries and shards of another shard count."""
    removed = []
    for name, parsed in sorted(shards.split_files(out_dir, split).items()):
        if parsed.temporary or parsed.total != num_shards:
            os.remove(os.path.join(out_dir, name))
            removed.append(name)
    return removed


# ----------------------------------------------------------------------------
# Manifest


def _manifest_header(dataset: str, vocab: text.Vocabulary, vocab_file: Optional[str],
                     image_size: int, num_words: int,
                     settings: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    all_settings = {"image_size": int(image_size), "num_words": int(num_words)}
    all_settings.update(settings or {})
    return {
        "format": MANIFEST_FORMAT,
        "schema_version": schema.SCHEMA_VERSION,
        "dataset": dataset,
        "vocab_file": vocab_file,
        "vocab_size": len(vocab),
        "vocab_sha256": _json_sha256(vocab.tokens),
        "settings": all_settings,
    }


_HEADER_KEYS = ("format", "schema_version", "dataset", "vocab_sha256", "settings")


def _load_manifest(out_dir: str, header: Dict[str, Any]) -> Dict[str, Any]:
    """The manifest in `out_dir` updated with `header`, or a new one.

    Raises ValueError when `out_dir` already holds records written with other
    settings or another vocabulary (mixing them would corrupt the dataset).
    """
    manifest = shards.manifest_to_update(out_dir)  # {} when unreadable: all rewritten
    if manifest.get("splits"):
        differences = [f"{key}: {manifest.get(key)!r} there, {header[key]!r} now"
                       for key in _HEADER_KEYS if manifest.get(key) != header[key]]
        if differences:
            raise ValueError(
                f"{out_dir} already holds records written with other settings ("
                + "; ".join(differences) + "): choose another --output_dir, or delete "
                "that directory to rebuild every split")
    splits = manifest.get("splits") if isinstance(manifest.get("splits"), dict) else {}
    return dict(header, splits=splits)


# ----------------------------------------------------------------------------
# Worker side: one chunk of a shard per task

# Expressions per task. Shards are cut into chunks of about this many
# expressions so that two workers stay busy to the end (whole shards as tasks
# left one worker idle while the other finished a slow shard); a chunk is
# small next to a shard (256 records) and large next to the cost of sending it.
DEFAULT_CHUNK_SIZE = 16

_WORKER: Dict[str, Any] = {}


def _init_worker(source: Source, vocab: text.Vocabulary) -> None:
    _WORKER.update(source=source, vocab=vocab)


@dataclasses.dataclass(frozen=True)
class _ChunkTask:
    """Consecutive expressions of one shard. `order` is the chunk's place in
    the split (errors are reported in expression order)."""
    order: int
    shard: int
    expressions: Tuple[Expression, ...]
    padded: bool
    image_size: int
    num_words: int
    strict: bool


def chunk_ranges(count: int, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 same_ref: Optional[Callable[[int, int], bool]] = None) -> List[Tuple[int, int]]:
    """[lo, hi) ranges cutting `count` expressions into chunks of about
    `chunk_size`; with `same_ref(i, j)` a chunk is extended so that it never
    splits consecutive sentences of one ref (their image work is shared)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    ranges, lo = [], 0
    while lo < count:
        hi = min(lo + chunk_size, count)
        while same_ref is not None and hi < count and same_ref(hi - 1, hi):
            hi += 1
        ranges.append((lo, hi))
        lo = hi
    return ranges


def _where(expr: Expression) -> str:
    return f"image {expr.image_id}, ref {expr.ref_id}, sentence {expr.sent_id}"


def _encode_words(vocab: text.Vocabulary, expr: Expression, num_words: int) -> np.ndarray:
    try:
        return vocab.encode(expr.sentence, num_words)
    except text.EmptySentenceError as err:
        raise DataError("empty_sentence", str(err), _where(expr)) from None
    except (text.UndecodableSentenceError, TypeError) as err:
        raise DataError("undecodable_sentence", str(err), _where(expr)) from None


def _encode_image_and_mask(source: Source, expr: Expression, padded: bool,
                           image_size: int) -> Tuple[bytes, bytes, int, int, Tuple[str, ...]]:
    """(image PNG, mask PNG, original height, original width, degenerate reasons)
    of one ref. Evaluation splits keep degenerate samples (see the module
    docstring); training splits skip empty and mismatched masks."""
    image = source.load_image(expr)
    try:
        rgb = image_ops.to_rgb(np.asarray(image))
    except (TypeError, ValueError) as err:
        raise DataError("unreadable_image", str(err), _where(expr)) from None
    height, width = rgb.shape[:2]
    if getattr(source, "masks_follow_image", False):
        # As the original: polygons decoded at the image file's size.
        mask = np.asarray(source.load_mask(expr, image_shape=(height, width)))
    else:
        mask = np.asarray(source.load_mask(expr))
    if mask.ndim != 2 or mask.size == 0:
        raise DataError("invalid_annotation", f"mask of shape {mask.shape}", _where(expr))
    notes_of = getattr(source, "mask_notes", None)
    degenerate = list(notes_of(expr)) if notes_of else []
    if mask.shape != (height, width):
        if padded:
            raise DataError("mask_size_mismatch", f"mask {mask.shape} but image "
                            f"{(height, width)}", _where(expr))
        # The original maps the prediction to the mask's size and scores it there.
        degenerate.append("mask_size_mismatch")
    if not mask.any():
        if padded:
            raise DataError("empty_mask", "the referred region is empty", _where(expr))
        # Scored as the original: a failure at every threshold, its predicted
        # pixels added to the union.
        degenerate.append("empty_mask")
    if padded:
        try:
            rgb = image_ops.resize_and_pad(rgb, image_size)
        except ValueError as err:  # a side that would round to 0 pixels
            raise DataError("degenerate_image", str(err), _where(expr)) from None
        mask = image_ops.resize_and_pad_mask(mask, image_size)
        if not mask.any():
            raise DataError("empty_mask", f"the referred region vanishes when resized to "
                            f"{image_size}x{image_size}", _where(expr))
    return (schema.encode_png(rgb), schema.encode_mask_png(mask), height, width,
            tuple(degenerate))


def _serialize(expr: Expression, task: _ChunkTask,
               cache: Dict[str, Any]) -> Tuple[bytes, Tuple[str, ...]]:
    """One serialized `tf.train.Example`; raises DataError for a bad sample."""
    source, vocab = _WORKER["source"], _WORKER["vocab"]
    words = _encode_words(vocab, expr, task.num_words)
    # Consecutive sentences of one ref share the image work (the original also
    # resized each ref once); errors are shared too.
    key = (expr.image_id, expr.ref_id, expr.ann_id)
    if cache.get("key") != key:
        try:
            value: Any = _encode_image_and_mask(source, expr, task.padded, task.image_size)
        except DataError as err:
            value = err
        cache["key"], cache["value"] = key, value
    if isinstance(cache["value"], DataError):
        raise cache["value"]
    image_png, mask_png, height, width, degenerate = cache["value"]
    example = schema.make_example(
        image_png, mask_png, words, expr.sentence, expr.image_id, expr.ref_id,
        expr.ann_id, expr.sent_id, height, width, task.padded, degenerate=degenerate)
    # Map fields (the feature dict) serialize in a fixed order only on request.
    return example.SerializeToString(deterministic=True), degenerate


def _error_parts(err: DataError) -> Tuple[str, str, Optional[str]]:
    """(reason, message, path) of a DataError, to rebuild it in the parent
    (exceptions with extra constructor arguments do not unpickle)."""
    message = str(err)
    prefix, suffix = f"[{err.reason}] ", f" ({err.path})" if err.path else ""
    if message.startswith(prefix):
        message = message[len(prefix):]
    if suffix and message.endswith(suffix):
        message = message[:-len(suffix)]
    return err.reason, message, err.path


class _WriteError(Exception):
    """A failed write of the output (not of reading an input): `cause` says why."""

    def __init__(self, cause: BaseException):
        super().__init__(str(cause))
        self.cause = cause


def _writing(action: Callable[[], Any]) -> Any:
    """Runs `action` (a write of the output), turning its OSError / TF error into _WriteError."""
    import tensorflow as tf

    try:
        return action()
    except (OSError, tf.errors.OpError) as err:
        raise _WriteError(err) from None


def _encode_chunk(task: _ChunkTask) -> Dict[str, Any]:
    """The serialized records of one chunk, with its skip and degenerate
    counts. Runs in a worker process (in this process with one worker) and
    writes nothing: the parent writes the shards."""
    records: List[bytes] = []
    skipped: collections.Counter = collections.Counter()
    degenerate: collections.Counter = collections.Counter()
    examples: Dict[str, str] = {}
    degenerate_records = 0
    cache: Dict[str, Any] = {}
    for expr in task.expressions:
        try:
            serialized, reasons = _serialize(expr, task, cache)
        except DataError as err:
            if task.strict:
                return {"order": task.order, "shard": task.shard,
                        "expressions": len(task.expressions), "error": _error_parts(err)}
            skipped[err.reason] += 1
            examples.setdefault(err.reason, str(err))
        else:
            records.append(serialized)
            degenerate.update(reasons)
            degenerate_records += bool(reasons)
    return {"order": task.order, "shard": task.shard, "expressions": len(task.expressions),
            "records": records, "skipped": dict(skipped), "skip_examples": examples,
            "degenerate": dict(degenerate), "degenerate_records": degenerate_records}


# ----------------------------------------------------------------------------
# Parent side


class _ShardWriter:
    """Writes one shard from its chunks' records, in chunk order, to
    `<shard>.tmp-<pid>`, and renames it once the last chunk is in, so a shard
    file is either complete or absent."""

    def __init__(self, index: int, path: str, orders: Sequence[int]):
        self.index, self.path = index, path
        self.orders = list(orders)
        self.tmp = shards.temporary_path(path)
        self.waiting: Dict[int, Dict[str, Any]] = {}
        self.writer = None
        self.summary: Dict[str, Any] = {
            "index": index, "file": os.path.basename(path), "records": 0,
            "skipped": collections.Counter(), "skip_examples": {},
            "degenerate": collections.Counter(), "degenerate_records": 0}

    def add(self, result: Dict[str, Any]) -> Optional[Dict[str, Any]]:
        """Takes one chunk's result; returns the shard's manifest entry when
        this result completes the shard, else None."""
        import tensorflow as tf  # the record writer; imported where it is used

        self.waiting[result["order"]] = result
        try:
            while self.orders and self.orders[0] in self.waiting:
                chunk = self.waiting.pop(self.orders.pop(0))
                if self.writer is None:
                    self.writer = _writing(lambda: tf.io.TFRecordWriter(self.tmp))
                for record in chunk["records"]:
                    _writing(lambda: self.writer.write(record))
                summary = self.summary
                summary["records"] += len(chunk["records"])
                summary["skipped"].update(chunk["skipped"])
                summary["degenerate"].update(chunk["degenerate"])
                summary["degenerate_records"] += chunk["degenerate_records"]
                for reason, message in chunk["skip_examples"].items():
                    summary["skip_examples"].setdefault(reason, message)
            if self.orders:
                return None
            if self.writer is None:  # a shard of no chunks (not planned, but harmless)
                self.writer = _writing(lambda: tf.io.TFRecordWriter(self.tmp))
            _writing(self.writer.close)
            self.writer = None
            sha256 = file_sha256(self.tmp)
            _writing(lambda: os.replace(self.tmp, self.path))
        except _WriteError as err:
            self.abort()
            raise OSError(atomic_io.unwritable_message(self.path, err.cause)) from None
        summary = dict(self.summary, sha256=sha256,
                       skipped=dict(sorted(self.summary["skipped"].items())),
                       degenerate=dict(sorted(self.summary["degenerate"].items())))
        return summary

    def abort(self) -> None:
        """Closes and deletes an unfinished temporary (an error or an interruption)."""
        if self.writer is not None:
            try:
                self.writer.close()
            except Exception:  # noqa: BLE001 - the temporary is deleted anyway
                pass
            self.writer = None
        if os.path.exists(self.tmp):
            os.remove(self.tmp)


class _Progress:
    """One stderr line: processed / total, rate and ETA."""

    def __init__(self, label: str, total: int, enabled: bool, interval: float = 0.5):
        self.label, self.total, self.enabled = label, total, enabled
        self.interval = interval if sys.stderr.isatty() else 10.0
        self.start = self.last = time.monotonic()

    def update(self, done: int, force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self.last < self.interval):
            return
        self.last = now
        elapsed = max(now - self.start, 1e-9)
        rate = done / elapsed
        eta = (self.total - done) / rate if rate > 0 else float("nan")
        eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if math.isfinite(eta) else "?"
        end = "\r" if sys.stderr.isatty() and not force else "\n"
        sys.stderr.write(f"[{self.label}] {done}/{self.total} expressions  {rate:.1f}/s  "
                         f"ETA {eta_text}   {end}")
        sys.stderr.flush()


def _start_method() -> str:
    # fork starts workers at no cost and passes the source without pickling
    # it; the parent runs no TensorFlow ops before forking.
    return "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"


def _run_tasks(tasks: List[_ChunkTask], writers: Dict[int, _ShardWriter], source: Source,
               vocab: text.Vocabulary, num_workers: int,
               on_result: Callable[[Dict[str, Any]], None], progress: _Progress,
               strict: bool) -> None:
    """Encodes the chunks (in this process for one worker, else in worker
    processes, whose results may arrive in any order), writes each shard
    through its `_ShardWriter` and passes its manifest entry to `on_result`
    once complete. Raises the first DataError in expression order when
    `strict`; unfinished temporaries are deleted on any error."""
    errors: List[Dict[str, Any]] = []
    done = 0

    def take(result: Dict[str, Any]) -> None:
        nonlocal done
        done += result["expressions"]
        if "error" in result:
            errors.append(result)
            return
        shard = writers[result["shard"]].add(result)
        if shard is not None:
            on_result(shard)

    parallel = num_workers > 1 and len(tasks) > 1
    try:
        if not parallel:
            _init_worker(source, vocab)
            try:
                for task in tasks:
                    take(_encode_chunk(task))
                    progress.update(done)
                    if errors:
                        break
            finally:
                _WORKER.clear()
        else:
            # With fork, every worker is started at the first submit, before
            # the parent opens a record writer.
            pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=min(num_workers, len(tasks)),
                mp_context=multiprocessing.get_context(_start_method()),
                initializer=_init_worker, initargs=(source, vocab))
            try:
                pending = {pool.submit(_encode_chunk, task) for task in tasks}
                while pending:
                    finished, pending = concurrent.futures.wait(
                        pending, timeout=0.5, return_when=concurrent.futures.FIRST_COMPLETED)
                    for future in finished:
                        take(future.result())
                    if errors:
                        # Chunks start in order, so the ones still running
                        # precede those cancelled here; their errors come first.
                        for other in pending:
                            other.cancel()
                        pending = {f for f in pending if not f.cancelled()}
                    progress.update(done)
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    finally:
        for writer in writers.values():
            if writer.orders:  # unfinished
                writer.abort()
    progress.update(done, force=True)
    if errors and strict:
        reason, message, path = min(errors, key=lambda r: r["order"])["error"]
        raise DataError(reason, message, path)


def group_by_image(expressions) -> list:
    """Stable regrouping so that all expressions of an image are consecutive (evaluation splits).

    Images keep the order of their first expression, expressions keep their
    order within an image. Evaluation then runs the trunk once per image over
    consecutive records (REFER lists refs, not images, so one image's refs can
    be far apart in refs(*).p), and workers decode each image once.
    """
    order: dict = {}
    groups: list = []
    for expr in expressions:
        if expr.image_id not in order:
            order[expr.image_id] = len(groups)
            groups.append([])
        groups[order[expr.image_id]].append(expr)
    return [expr for group in groups for expr in group]


def build_split(source: Source, split: str, vocab: text.Vocabulary, out_dir: str,
                num_shards: Optional[int] = None, num_workers: int = 2,
                image_size: int = image_ops.DEFAULT_SIZE, strict: bool = False,
                progress: bool = True, num_words: int = text.DEFAULT_NUM_WORDS,
                vocab_file: Optional[str] = None,
                settings: Optional[Dict[str, Any]] = None,
                train_order: str = "random",
                chunk_size: int = DEFAULT_CHUNK_SIZE) -> SplitStats:
    """Writes the shards of one split into `out_dir` and records them in
    `out_dir/manifest.json`.

    Args:
      source: the dataset reader; `source.expressions(split)` fixes the order.
      split: a split of the source; training splits are resized and padded.
      vocab: maps each sentence to `num_words` ids.
      out_dir: the dataset directory (`<output_dir>/<dataset>`).
      num_shards: shards of this split (default `default_num_shards`).
      num_workers: worker processes (1 runs in this process).
      image_size: side of the resized-and-padded training records.
      strict: raise the first bad sample as a DataError instead of skipping.
      vocab_file: recorded in the manifest (relative to `out_dir` or absolute).
      settings: extra settings recorded in the manifest (e.g. the shapes seed);
        records written with other settings are never mixed in.
      train_order: "random" writes a training split in the seeded order
        `training_permutation` (the default); "file" in the source's order.
      chunk_size: expressions per worker task (`chunk_ranges`); the output
        does not depend on it.

    Returns the split's SplitStats. Complete shards of an earlier run with the
    same inputs and settings (checksum as in the manifest) are kept.
    """
    start = time.monotonic()
    if train_order not in TRAIN_ORDERS:
        raise ValueError(f"train_order must be one of {TRAIN_ORDERS}, got {train_order!r}")
    padded = split in config.TRAIN_SPLITS
    expressions = list(source.expressions(split))
    if padded and train_order == "random":
        # The original reads a fresh random permutation of all samples every
        # epoch; records in random order let the shard stream come close to it.
        expressions = [expressions[i] for i in training_permutation(len(expressions))]
    elif not padded:
        # Evaluation shares one trunk pass among consecutive same-image records.
        expressions = group_by_image(expressions)
    num_shards = int(num_shards) if num_shards else default_num_shards(len(expressions))
    os.makedirs(out_dir, exist_ok=True)
    header = _manifest_header(source.name, vocab, vocab_file, image_size, num_words, settings)
    manifest = _load_manifest(out_dir, header)
    fingerprint = _json_sha256({
        "split": split, "num_shards": num_shards, "padded": padded,
        "header": {key: header[key] for key in _HEADER_KEYS},
        "expressions": _expressions_sha256(expressions)})

    _remove_stale_files(out_dir, split, num_shards)
    complete: Dict[int, Dict[str, Any]] = {}
    previous = manifest["splits"].get(split)
    if isinstance(previous, dict) and previous.get("fingerprint") == fingerprint:
        for shard in previous.get("shards") or []:
            path = os.path.join(out_dir, str(shard.get("file")))
            if os.path.isfile(path) and file_sha256(path) == shard.get("sha256"):
                complete[int(shard["index"])] = shard
    reused = len(complete)

    entry: Dict[str, Any] = {"fingerprint": fingerprint, "padded": padded,
                             "expressions": len(expressions), "num_shards": num_shards,
                             "complete": False}

    def save() -> None:
        entry["shards"] = [complete[i] for i in sorted(complete)]
        manifest["splits"][split] = entry
        shards.write_manifest(out_dir, manifest)

    def on_result(result: Dict[str, Any]) -> None:
        complete[result["index"]] = result
        save()

    save()
    def ref_key(expr: Expression) -> Tuple[Any, Any, Any]:
        return (expr.image_id, expr.ref_id, expr.ann_id)

    tasks: List[_ChunkTask] = []
    writers: Dict[int, _ShardWriter] = {}
    for index, (lo, hi) in enumerate(shard_ranges(len(expressions), num_shards)):
        if index in complete:
            continue
        shard = expressions[lo:hi]
        orders = []
        for a, b in chunk_ranges(len(shard), chunk_size,
                                 lambda i, j: ref_key(shard[i]) == ref_key(shard[j])):
            orders.append(len(tasks))
            tasks.append(_ChunkTask(order=len(tasks), shard=index,
                                    expressions=tuple(shard[a:b]), padded=padded,
                                    image_size=int(image_size), num_words=int(num_words),
                                    strict=strict))
        path = os.path.join(out_dir, shards.shard_name(split, index, num_shards))
        writers[index] = _ShardWriter(index, path, orders)
    meter = _Progress(f"{source.name} {split}", sum(len(t.expressions) for t in tasks),
                      progress and bool(tasks))
    _run_tasks(tasks, writers, source, vocab, num_workers, on_result, meter, strict)

    skipped: collections.Counter = collections.Counter()
    degenerate: collections.Counter = collections.Counter()
    examples: Dict[str, str] = {}
    for index in sorted(complete):
        skipped.update(complete[index].get("skipped") or {})
        degenerate.update(complete[index].get("degenerate") or {})
        for reason, message in (complete[index].get("skip_examples") or {}).items():
            examples.setdefault(reason, message)
    degenerate_records = sum(int(s.get("degenerate_records") or 0) for s in complete.values())
    entry.update(complete=True, count=sum(s["records"] for s in complete.values()),
                 skipped=dict(sorted(skipped.items())),
                 degenerate=dict(sorted(degenerate.items())),
                 degenerate_records=degenerate_records)
    save()
    stats = SplitStats(split=split, expressions=len(expressions), count=entry["count"],
                       skipped=entry["skipped"], skip_examples=examples,
                       shards=entry["shards"], padded=padded, written_shards=len(writers),
                       reused_shards=reused, seconds=time.monotonic() - start,
                       degenerate=entry["degenerate"], degenerate_records=degenerate_records)
    if progress:
        sys.stderr.write(stats.summary() + "\n")
    return stats


def vocabulary_split(source: Source) -> str:
    """The training split a built vocabulary is counted on (train, else trainval)."""
    for split in config.TRAIN_SPLITS:
        if split in source.splits():
            return split
    raise ValueError(f"{source.name} has no training split ({config.TRAIN_SPLITS}) to build "
                     "a vocabulary from: pass --vocab_file")


def build_dataset(source: Source, output_dir: str, splits: Optional[Sequence[str]] = None,
                  vocab_file: Optional[str] = None, build_vocab: bool = False,
                  min_count: int = 1, num_shards: Optional[int] = None, num_workers: int = 2,
                  image_size: int = image_ops.DEFAULT_SIZE,
                  num_words: int = text.DEFAULT_NUM_WORDS, strict: bool = False,
                  progress: bool = True,
                  settings: Optional[Dict[str, Any]] = None,
                  train_order: str = "random") -> Dict[str, SplitStats]:
    """Writes every requested split of `source` under `<output_dir>/<source.name>`.

    The vocabulary is `vocab_file`, or, with `build_vocab` or for a source
    without an original vocabulary (`vocab_name` None, e.g. shapes), the
    source's `fixed_vocabulary()` when it has one (the shapes grammar's; not
    with `build_vocab`), else counted on `vocabulary_split` with `min_count`,
    and written to `<output_dir>/<dataset>/vocabulary.txt`. The training
    order (`train_order`, `train_order_seed`) is recorded in the manifest's
    settings. Returns {split: SplitStats}.
    """
    available = tuple(source.splits())
    splits = list(splits) if splits else list(available)
    unknown = [s for s in splits if s not in available]
    if unknown:
        raise ValueError(f"Unknown split(s) {unknown} for {source.name}: choose from "
                         f"{list(available)}")
    out_dir = os.path.join(output_dir, source.name)
    atomic_io.ensure_writable_dir(out_dir)  # before any work: a clear error, nothing written
    settings = dict(settings or {})
    # How training splits are ordered (shards.training_order reads it back).
    settings.update(train_order=train_order, train_order_seed=TRAIN_ORDER_SEED)
    fixed = None if build_vocab else source.fixed_vocabulary()
    if build_vocab or source.vocab_name is None:
        if fixed is not None:  # the source's own word list (the synthetic set's grammar)
            tokens = list(fixed)
            settings.update(vocab_built_from="grammar")
        else:
            vocab_split = vocabulary_split(source)
            sentences = [e.sentence for e in source.expressions(vocab_split)
                         if isinstance(e.sentence, str)]
            tokens = text.build_vocabulary(sentences, min_count=min_count)
            settings.update(vocab_built_from=vocab_split, min_count=int(min_count))
        vocab = text.Vocabulary(tokens)
        manifest_vocab = BUILT_VOCAB_NAME  # relative to the dataset directory
        os.makedirs(out_dir, exist_ok=True)
        # Refuse before touching anything when the directory holds other records.
        _load_manifest(out_dir, _manifest_header(source.name, vocab, manifest_vocab,
                                                 image_size, num_words, settings))
        vocab_path = os.path.join(out_dir, BUILT_VOCAB_NAME)
        try:
            text.write_vocabulary(tokens, vocab_path)
        except OSError as err:
            raise OSError(atomic_io.unwritable_message(vocab_path, err)) from None
    else:
        if not vocab_file:
            raise ValueError(
                f"{source.name} needs its vocabulary: pass --vocab_file (the original "
                f"{source.vocab_name}) or --build_vocab to build one from the training split")
        vocab = text.Vocabulary.from_file(vocab_file)
        manifest_vocab = os.path.abspath(vocab_file)
    stats = {}
    for split in splits:
        stats[split] = build_split(
            source, split, vocab, out_dir, num_shards=num_shards, num_workers=num_workers,
            image_size=image_size, strict=strict, progress=progress, num_words=num_words,
            vocab_file=manifest_vocab, settings=settings, train_order=train_order)
    return stats


# ----------------------------------------------------------------------------
# What the `preprocess/build_data.py` entry point runs


def make_source(dataset: str, data_root: Optional[str], seed: int = 0,
                shapes_args: Optional[dict] = None) -> Source:
    """The reader of a dataset flag; FileNotFoundError / ValueError say what is missing.

    `shapes_args` are extra ShapesSource arguments (image counts) for the synthetic set.
    """
    if dataset == "shapes":
        from tf_rmi.data.shapes import ShapesSource
        return ShapesSource(seed=seed, **(shapes_args or {}))
    config.dataset_spec(dataset)  # refuses an unknown dataset, naming the known ones
    if not data_root:
        raise ValueError(f"--data_root is required for {dataset}: the REFER data folder "
                         "(refcoco/, refcoco+/, refcocog/, images/train2014/) or, for "
                         "referit, the folder with referit_query_<split>.json, images/, mask/")
    if dataset == "referit":
        from tf_rmi.data.referit import ReferItSource
        return ReferItSource(data_root)
    from tf_rmi.data.refer import ReferSource
    return ReferSource(data_root, dataset)


# The original release's vocabularies (its data/vocabulary_*.txt), shipped as package data.
PACKAGED_VOCAB_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "vocab")


def packaged_vocab_file(vocab_name: Optional[str]) -> Optional[str]:
    """The copy of the original `vocab_name` shipped in `tf_rmi/data/vocab/`, or None."""
    if not vocab_name:
        return None
    path = os.path.join(PACKAGED_VOCAB_DIR, vocab_name)
    return path if os.path.isfile(path) else None


def find_vocab_file(vocab_name: Optional[str], data_root: Optional[str]) -> Optional[str]:
    """The original vocabulary file: in `data_root` or its parent (the release
    kept data/vocabulary_*.txt beside data/referit/), else the copy shipped
    with the package (`tf_rmi/data/vocab/`), else None."""
    if not vocab_name:
        return None
    if data_root:
        for directory in (data_root, os.path.dirname(os.path.abspath(data_root))):
            path = os.path.join(directory, vocab_name)
            if os.path.isfile(path):
                return path
    return packaged_vocab_file(vocab_name)


def preprocess(dataset: str, data_root: Optional[str], output_dir: str,
               splits: Optional[Sequence[str]] = None, vocab_file: Optional[str] = None,
               build_vocab: bool = False, min_count: int = 1,
               num_shards: Optional[int] = None, num_workers: int = 2,
               image_size: int = image_ops.DEFAULT_SIZE,
               num_words: int = text.DEFAULT_NUM_WORDS, strict: bool = False, seed: int = 0,
               progress: bool = True,
               shapes_args: Optional[dict] = None,
               train_order: str = "random") -> Dict[str, SplitStats]:
    """`build_dataset` for a dataset flag, finding the original vocabulary
    when none is given. Returns {split: SplitStats}."""
    source = make_source(dataset, data_root, seed, shapes_args)
    settings = {}
    if dataset == "shapes":
        settings = {"seed": int(seed), **{k: (v if isinstance(v, float) else int(v))
                                          for k, v in (shapes_args or {}).items()}}
    if not (build_vocab or source.vocab_name is None or vocab_file):
        vocab_file = find_vocab_file(source.vocab_name, data_root)
        if vocab_file is None:
            raise FileNotFoundError(
                f"{dataset} uses the original {source.vocab_name}, not found in {data_root}, "
                f"its parent or {PACKAGED_VOCAB_DIR} (the copy shipped with tf_rmi; "
                "reinstall the package to restore it): pass --vocab_file=<path to it> (or "
                "--build_vocab to build a new vocabulary from the training split)")
    return build_dataset(
        source, output_dir, splits=splits or None, vocab_file=vocab_file,
        build_vocab=build_vocab, min_count=min_count, num_shards=num_shards,
        num_workers=num_workers, image_size=image_size, num_words=num_words, strict=strict,
        progress=progress, settings=settings, train_order=train_order)
