"""The on-disk layout of a preprocessed dataset: the one owner of shard file
names and of the manifest file.

    <tfrecord_dir>/<dataset>/<split>-NNNNN-of-MMMMM.tfrecord     (shard_name)
    <tfrecord_dir>/<dataset>/<split>-NNNNN-of-MMMMM.tfrecord.tmp-<pid>
                                        (a shard being written: temporary_path)
    <tfrecord_dir>/<dataset>/manifest.json                       (MANIFEST_NAME)

The record writer (`preprocess_lib`) and the tf.data readers (`pipeline`) both
name, list and parse shards and read the manifest through this module; what
the manifest holds is decided by `preprocess_lib`. Plain files and JSON only
(no TensorFlow), so the writer does not depend on the reader.
"""
from __future__ import annotations

import json
import os
import re
from typing import Any, Dict, List, NamedTuple, Optional

from tf_rmi import atomic_io

MANIFEST_NAME = "manifest.json"
# `.+` is greedy but the rest is fixed, so the split is the name less its
# 25-character `-NNNNN-of-MMMMM.tfrecord` suffix (and any `.tmp-<pid>`).
SHARD_RE = re.compile(r"^(?P<split>.+)-(?P<index>\d{5})-of-(?P<total>\d{5})\.tfrecord"
                      r"(?P<temporary>\.tmp-\d+)?$")


class ShardName(NamedTuple):
    """A parsed shard file name: shard `index` of `total` (0-based) of `split`;
    `temporary` for a `.tmp-<pid>` file a writer has not renamed (yet)."""

    split: str
    index: int
    total: int
    temporary: bool


def shard_name(split: str, index: int, total: int) -> str:
    """File name of shard `index` of `total` for `split`."""
    return f"{split}-{index:05d}-of-{total:05d}.tfrecord"


def temporary_path(path: str, pid: Optional[int] = None) -> str:
    """Where a writer writes shard `path` before renaming it (`pid`: this process)."""
    return f"{path}.tmp-{os.getpid() if pid is None else pid}"


def parse_shard_name(name: str) -> Optional[ShardName]:
    """A file name (no directory) parsed by `SHARD_RE`; None when not a shard's."""
    match = SHARD_RE.match(name)
    if not match:
        return None
    return ShardName(match.group("split"), int(match.group("index")),
                     int(match.group("total")), match.group("temporary") is not None)


def dataset_dir(tfrecord_dir: str, dataset: str) -> str:
    """`<tfrecord_dir>/<dataset>`: one dataset's shards and manifest."""
    return os.path.join(tfrecord_dir, dataset)


def split_files(directory: str, split: str) -> Dict[str, ShardName]:
    """{file name: parsed name} of the shard files of `split` in a dataset
    directory, temporaries included (none when the directory is missing)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    found = {}
    for name in names:
        parsed = parse_shard_name(name)
        if parsed is not None and parsed.split == split:
            found[name] = parsed
    return found


def _preprocess_hint(tfrecord_dir: str, dataset: str, split: str) -> str:
    return (f"run `make preprocess DATASET={dataset} SPLITS={split} OUT={tfrecord_dir}` "
            "(with DATA_ROOT pointing at the raw data) to write them")


def shard_paths(tfrecord_dir: str, dataset: str, split: str) -> List[str]:
    """Paths of the finished shards of one split, in shard order.

    Raises FileNotFoundError naming the split and the preprocess command when
    there are none, and ValueError when the set of shards is incomplete (a
    preprocess run that did not finish).
    """
    directory = dataset_dir(tfrecord_dir, dataset)
    found = sorted((parsed.index, parsed.total, os.path.join(directory, name))
                   for name, parsed in split_files(directory, split).items()
                   if not parsed.temporary)
    if not found:
        raise FileNotFoundError(
            f"No TFRecord shards for split '{split}' of dataset '{dataset}' under "
            f"{directory}: {_preprocess_hint(tfrecord_dir, dataset, split)}")
    totals = {total for _, total, _ in found}
    indices = sorted(index for index, _, _ in found)
    if len(totals) != 1 or indices != list(range(totals.pop())):
        raise ValueError(
            f"Incomplete shards for split '{split}' under {directory} (found indices "
            f"{indices[:10]}{'...' if len(indices) > 10 else ''} of totals "
            f"{sorted({t for _, t, _ in found})}): re-run `make preprocess` for this split")
    return [path for _, _, path in found]


# ----------------------------------------------------------------------------
# Manifest


def read_manifest(tfrecord_dir: str, dataset: str) -> Dict[str, Any]:
    """The preprocess manifest as a dict (for readers: a bad one is an error).

    Raises FileNotFoundError (naming the command that writes it) when absent
    and ValueError when it is not a JSON object.
    """
    path = os.path.join(dataset_dir(tfrecord_dir, dataset), MANIFEST_NAME)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"No manifest at {path}: {_preprocess_hint(tfrecord_dir, dataset, '<split>')}")
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f"Manifest {path} is not valid JSON ({err}); re-run `make preprocess`") from err
    if not isinstance(manifest, dict):
        raise ValueError(f"Manifest {path} must hold a JSON object, got {type(manifest).__name__}")
    return manifest


def manifest_or_none(tfrecord_dir: str, dataset: str) -> Optional[Dict[str, Any]]:
    """`read_manifest`, or None when there is no manifest (records written by hand)."""
    try:
        return read_manifest(tfrecord_dir, dataset)
    except FileNotFoundError:
        return None


def manifest_to_update(directory: str) -> Dict[str, Any]:
    """The manifest in a dataset directory as the writer resumes from it: {}
    when absent, unreadable or not a JSON object (every shard is then rewritten)."""
    path = os.path.join(directory, MANIFEST_NAME)
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def write_manifest(directory: str, manifest: Dict[str, Any]) -> str:
    """Writes `<directory>/manifest.json` atomically; returns its path. Raises
    OSError with `atomic_io.unwritable_message` (path, reason, fix)."""
    path = os.path.join(directory, MANIFEST_NAME)
    try:
        return atomic_io.write_json(path, manifest)
    except OSError as err:
        raise OSError(atomic_io.unwritable_message(path, err)) from None


def largest_shard(tfrecord_dir: str, dataset: str, split: str) -> int:
    """Records in the largest shard of `split` per the manifest (0 when unknown)."""
    manifest = manifest_or_none(tfrecord_dir, dataset) or {}
    entry = (manifest.get("splits") or {}).get(split)
    shards = entry.get("shards") if isinstance(entry, dict) else None
    counts = [s.get("records") for s in shards or [] if isinstance(s, dict)]
    return max([c for c in counts if isinstance(c, int)], default=0)


def training_order(tfrecord_dir: str, dataset: str) -> Optional[str]:
    """The manifest's `settings.train_order` ("random" or "file"), None when absent
    (records written before tf_rmi recorded it were written in file order)."""
    manifest = manifest_or_none(tfrecord_dir, dataset) or {}
    settings = manifest.get("settings") if isinstance(manifest.get("settings"), dict) else {}
    return settings.get("train_order")
