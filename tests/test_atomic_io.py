"""Atomic whole-file writes: the target is replaced whole or left as it was."""
import json
import os

import pytest

from tf_rmi import atomic_io


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "out.json")
    atomic_io.write_text(path, "old")
    atomic_io.write_json(path, {"b": 1, "a": [2]})
    assert open(path).read() == '{\n  "a": [\n    2\n  ],\n  "b": 1\n}\n'
    assert json.load(open(path)) == {"a": [2], "b": 1}
    assert os.listdir(tmp_path) == ["out.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = str(tmp_path / "out.json")
    atomic_io.write_text(path, "old")
    with pytest.raises(TypeError):  # fails before anything is written
        atomic_io.write_json(path, {"not serialisable": object()})
    assert open(path).read() == "old" and os.listdir(tmp_path) == ["out.json"]
    # A rename that fails (the target is a directory) leaves no temporary behind.
    target = tmp_path / "a_directory"
    target.mkdir()
    with pytest.raises(OSError):
        atomic_io.write_text(str(target), "text")
    assert sorted(os.listdir(tmp_path)) == ["a_directory", "out.json"]
