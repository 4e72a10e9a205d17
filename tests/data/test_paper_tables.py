"""The paper's published tables: shipped copies of ../shared/paper, read, not retyped."""
import csv
import hashlib
import os

import pytest

from tf_rmi.evaluation import eval_lib
from tf_rmi.data import paper_tables
from tests.conftest import shared_path


def _sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.parametrize("name", ["table1.csv", "length_breakdown.csv"])
def test_shipped_tables_are_the_shared_transcription(name):
    assert _sha(os.path.join(paper_tables.PUBLISHED_DIR, name)) == _sha(shared_path("paper", name))


def _csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(line for line in f if not line.startswith("#")))


def test_table1_has_8_methods_by_8_columns_as_in_the_file():
    columns, values = paper_tables.load_table1()
    rows = _csv_rows(paper_tables.TABLE1_CSV)
    assert [f"{d}/{s}" for d, s in columns] == rows[0][1:] and len(columns) == 8
    assert len(values) == 8
    for row in rows[1:]:
        assert [values[row[0]][c] for c in columns] == [float(v) for v in row[1:]]


def test_length_breakdown_has_four_groups_per_dataset():
    table = paper_tables.load_length_breakdown()
    assert sorted(table) == ["Gref", "referit", "unc", "unc+"]
    rows = _csv_rows(paper_tables.LENGTH_BREAKDOWN_CSV)
    header = rows[0]
    for row in rows[1:]:
        cells = dict(zip(header, row))
        group = table[cells["dataset"]][int(cells["group"]) - 1]
        assert group["R+RMI"] == float(cells["R+RMI"])
        assert f"{group['words'][0]}" == cells["words"].split("-")[0]
    assert all(len(groups) == 4 for groups in table.values())


def test_length_markdown_for_a_dataset_with_and_without_a_paper_table():
    lines = paper_tables.paper_length_markdown("referit")
    assert lines[0] == "| paper (R weights) | 1 | 2 | 3-4 | 5-20 |"
    rmi = [line for line in lines if line.startswith("| R+RMI")][0]
    groups = paper_tables.load_length_breakdown()["referit"]
    assert rmi == "| R+RMI, overall IoU | " + " | ".join(f"{g['R+RMI']:.2f}" for g in groups) + " |"
    assert paper_tables.paper_length_markdown("shapes") is None


def _results(dataset):
    group = {"lengths": [1, 3], "count": 2, "overall_iou": 0.5, "mean_iou": 0.5}
    summary = {"count": 2, "overall_iou": 0.5, "mean_iou": 0.5,
               "precision": {"0.5": 0.5}, "length_groups": [group]}
    return {"dataset": dataset, "split": "test", "expressions": 2, "raw": summary,
            "crf": None, "checkpoint": "c", "date": "d", "expressions_per_second": 1.0,
            "shared_trunk": True, "length_group_bounds": [[1, 3]],
            "degenerate": {"records": 0, "reasons": {}}}


def test_evaluation_report_prints_the_papers_length_table_beside_ours():
    text = eval_lib.results_markdown(_results("unc+"))
    assert "The paper's Tables 2-5 for unc+" in text
    paper = paper_tables.load_length_breakdown()["unc+"]
    assert "| R+LSTM, overall IoU | " + " | ".join(f"{g['R+LSTM']:.2f}" for g in paper) in text
    assert "paper, by length (1-2, 3-3, 4-5, 6-20 words)" in eval_lib.console_summary(
        _results("unc+"))
    assert "The paper's Tables 2-5" not in eval_lib.results_markdown(_results("shapes"))
