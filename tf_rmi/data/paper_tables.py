"""The paper's published numbers (Liu et al., ICCV 2017, Tables 1-5), read from CSV.

`published/table1.csv` (overall IoU per method and dataset/split) and
`published/length_breakdown.csv` (overall IoU per expression-length group, R
weights) are copies of the project's transcription of the paper; nothing here
retypes a number. Lines starting with `#` are comments.
"""
from __future__ import annotations

import csv
import os
from typing import Dict, List, Optional, Tuple

PUBLISHED_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "published")
TABLE1_CSV = os.path.join(PUBLISHED_DIR, "table1.csv")
LENGTH_BREAKDOWN_CSV = os.path.join(PUBLISHED_DIR, "length_breakdown.csv")
# The methods of Tables 2-5 (columns of length_breakdown.csv).
LENGTH_METHODS = ("R+LSTM", "R+RMI")


def _rows(path: str) -> Tuple[List[str], List[List[str]]]:
    """(header, data rows) of a CSV whose comment lines start with '#'."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} not found: the paper's tables ship with tf_rmi "
                                "(tf_rmi/data/published/); reinstall the package")
    with open(path, newline="", encoding="utf-8") as f:
        lines = [line for line in f if line.strip() and not line.lstrip().startswith("#")]
    rows = list(csv.reader(lines))
    if not rows:
        raise ValueError(f"{path} holds no table")
    return rows[0], rows[1:]


def load_table1(path: str = TABLE1_CSV) -> Tuple[List[Tuple[str, str]], Dict[str, Dict[Tuple[str, str], float]]]:
    """(columns, values): columns as (dataset, split) in the file's order, values
    {method: {(dataset, split): overall IoU %}}."""
    header, rows = _rows(path)
    if not header or header[0] != "method":
        raise ValueError(f"{path}: the first column must be 'method', got {header[:1]}")
    columns = []
    for name in header[1:]:
        dataset, sep, split = name.partition("/")
        if not sep:
            raise ValueError(f"{path}: column {name!r} is not <dataset>/<split>")
        columns.append((dataset, split))
    values: Dict[str, Dict[Tuple[str, str], float]] = {}
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"{path}: row {row[:1]} has {len(row)} cells, expected "
                             f"{len(header)}")
        values[row[0]] = {col: float(v) for col, v in zip(columns, row[1:])}
    return columns, values


def load_length_breakdown(path: str = LENGTH_BREAKDOWN_CSV) -> Dict[str, List[dict]]:
    """{dataset: [{"group": 1, "words": (lo, hi), "R+LSTM": %, "R+RMI": %,
    "relative_gain_percent": %}, ...]} in group order."""
    header, rows = _rows(path)
    out: Dict[str, List[dict]] = {}
    for row in rows:
        cells = dict(zip(header, row))
        lo, _, hi = cells["words"].partition("-")
        entry = {"group": int(cells["group"]), "words": (int(lo), int(hi or lo)),
                 "relative_gain_percent": float(cells["relative_gain_percent"])}
        for method in LENGTH_METHODS:
            entry[method] = float(cells[method])
        out.setdefault(cells["dataset"], []).append(entry)
    for groups in out.values():
        groups.sort(key=lambda g: g["group"])
    return out


def paper_length_markdown(dataset: str, path: str = LENGTH_BREAKDOWN_CSV) -> Optional[List[str]]:
    """Markdown lines of the paper's length table for `dataset` (None when the
    paper has none for it)."""
    groups = load_length_breakdown(path).get(dataset)
    if not groups:
        return None
    lines = ["| paper (R weights) | " + " | ".join(
                 f"{g['words'][0]}-{g['words'][1]}" if g["words"][0] != g["words"][1]
                 else f"{g['words'][0]}" for g in groups) + " |",
             "|---|" + "---|" * len(groups)]
    for method in LENGTH_METHODS:
        lines.append(f"| {method}, overall IoU | "
                     + " | ".join(f"{g[method]:.2f}" for g in groups) + " |")
    return lines
