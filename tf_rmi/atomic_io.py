"""Whole-file writes that never leave a half-written file: a temporary name
beside the target, then `os.replace` (atomic on one filesystem). On failure the
temporary file is removed and the target is left as it was."""
from __future__ import annotations

import json
import os
from typing import Any


def write_text(path: str, content: str) -> str:
    """Writes `content` (UTF-8) to `path` atomically; returns `path`."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(content)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def write_json(path: str, value: Any) -> str:
    """`value` as indented, key-sorted JSON with a final newline, written atomically."""
    return write_text(path, json.dumps(value, indent=2, sort_keys=True) + "\n")


def unwritable_message(path: str, err: BaseException) -> str:
    """One line for a failed write: the path, the system's reason, and the fix."""
    text = str(err).strip()
    reason = getattr(err, "strerror", None) or (text.splitlines()[0] if text else type(err).__name__)
    return (f"Cannot write {path} ({reason}): make the location writable and give it free "
            "space, or choose another location")


def ensure_writable_dir(path: str) -> str:
    """Creates `path` if needed and checks a file can be created in it (a probe
    file, removed at once). Raises OSError with `unwritable_message`; returns `path`."""
    import tempfile

    try:
        os.makedirs(path, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=path)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise OSError(unwritable_message(path, err)) from None
    return path
