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
