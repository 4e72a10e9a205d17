"""experiment_lib: every Table 1 row has runnable configs; the results table."""
import glob
import json
import os

import pytest

from tests.conftest import REPO_ROOT
from tf_rmi.recipes import experiment_lib
from tf_rmi.config import dataset_spec

CONFIGS_DIR = os.path.join(REPO_ROOT, "experiments", "configs")


def _configs():
    return [experiment_lib.Experiment.load(p)
            for p in sorted(glob.glob(os.path.join(CONFIGS_DIR, "*.json")))]


def test_every_table1_cell_is_covered_by_a_config():
    covered = set()
    for exp in _configs():
        for split in exp.eval_splits:
            covered.add((exp.table1_row, exp.dataset, split))
            if exp.crf:
                covered.add((exp.table1_row + "+DCRF", exp.dataset, split))
    wanted = {(row, d, s) for row in experiment_lib.TABLE1_ROWS
              for d, s, _ in experiment_lib.TABLE1_COLUMNS}
    assert wanted <= covered


def test_configs_use_the_original_budget_and_known_splits():
    for exp in _configs():
        assert exp.train["iterations"] == 750000
        assert exp.train_split in dataset_spec(exp.dataset).splits
        assert set(exp.eval_splits) <= set(dataset_spec(exp.dataset).splits)
        weights = "resnet" if exp.table1_row.startswith("R") else "deeplab"
        assert exp.model["weights"] == weights
        assert exp.model["model"] == exp.table1_row.split("+")[1]


def test_missing_pretrained_file_is_a_clear_error(tmp_path):
    exp = experiment_lib.Experiment.load(os.path.join(CONFIGS_DIR, "D_RMI_unc.json"))
    exp.pretrained = str(tmp_path / "absent.npy")
    with pytest.raises(FileNotFoundError, match="checkpoints/README.md"):
        exp.run_config(str(tmp_path))


def test_run_config_override_shrinks_the_budget(tmp_path):
    exp = experiment_lib.Experiment.load(os.path.join(CONFIGS_DIR, "R_LSTM_referit.json"))
    exp.pretrained = None
    cfg = exp.run_config(str(tmp_path), iterations=10)
    assert cfg.train.iterations == 10 and cfg.train.snapshot_every == 10
    assert cfg.model.model == "LSTM" and cfg.data.dataset == "referit"


def test_results_table_fills_only_rows_run(tmp_path):
    results_dir = tmp_path / "results"
    out = results_dir / "D_RMI_unc" / "testA"
    out.mkdir(parents=True)
    (out / "results.json").write_text(json.dumps(
        {"raw": {"overall_iou": 0.4321}, "crf": {"overall_iou": 0.4567}}))
    ours = experiment_lib.collect_results(str(results_dir), CONFIGS_DIR)
    assert ours == {"D+RMI": {"UNC testA": pytest.approx(43.21)},
                    "D+RMI+DCRF": {"UNC testA": pytest.approx(45.67)}}
    table = experiment_lib.results_table(ours)
    row = [line for line in table.splitlines() if line.startswith("| D+RMI+DCRF |")][0]
    assert "45.69 / 45.67" in row
    assert row.count("—") == len(experiment_lib.TABLE1_COLUMNS) - 1


def test_vocabulary_size_is_left_to_the_dataset_vocabulary(tmp_path):
    exp = experiment_lib.Experiment.load(os.path.join(CONFIGS_DIR, "D_RMI_referit.json"))
    exp.pretrained = None
    assert exp.run_config(str(tmp_path)).model.vocab_size == 0


def test_paper_table1_is_read_from_the_published_csv():
    from tf_rmi.data import paper_tables

    _, values = paper_tables.load_table1()
    paper = experiment_lib.paper_table1()
    assert set(paper) == set(experiment_lib.TABLE1_ROWS) == set(values)
    for row in experiment_lib.TABLE1_ROWS:
        for dataset, split, title in experiment_lib.TABLE1_COLUMNS:
            assert paper[row][title] == values[row][(dataset, split)]


def test_results_table_shows_every_paper_cell():
    paper = experiment_lib.paper_table1()
    lines = [l for l in experiment_lib.results_table({}).splitlines() if l.startswith("| ")][1:]
    assert [l.split(" | ")[0][2:] for l in lines] == list(experiment_lib.TABLE1_ROWS)
    for line in lines:
        row = line.split(" | ")[0][2:]
        cells = [c.strip() for c in line.strip("| ").split("|")[1:]]
        assert len(cells) == len(experiment_lib.TABLE1_COLUMNS) == 8
        assert [float(c.split(" / ")[0]) for c in cells] == [
            paper[row][t] for _, _, t in experiment_lib.TABLE1_COLUMNS]


def test_committed_table1_md_is_what_the_code_writes(tmp_path):
    results_dir = os.path.join(os.path.dirname(CONFIGS_DIR), "results")
    text = experiment_lib.write_table1(results_dir, CONFIGS_DIR, str(tmp_path / "table1.md"))
    with open(os.path.join(results_dir, "table1.md"), encoding="utf-8") as f:
        assert f.read() == text, "regenerate: tf_rmi experiment --table_only"


def test_paper_configs_keep_every_snapshot(tmp_path):
    """The original keeps every snapshot (max_to_keep 1000): 15 for 750000 / 50000."""
    for exp in _configs():
        exp.pretrained = None
        train = exp.run_config(str(tmp_path)).train
        assert train.iterations // train.snapshot_every == 15
        assert train.keep_checkpoints >= train.iterations // train.snapshot_every, exp.name


def test_r_rows_start_from_the_originals_tf_resnet_checkpoint_and_d_rows_from_tf_deeplab():
    for exp in _configs():
        if exp.model["weights"] == "resnet":
            assert exp.pretrained == "checkpoints/TF-resnet/ResNet101_init.tfmodel", exp.name
        else:
            assert exp.pretrained == "checkpoints/TF-deeplab/ResNet101_train.tfmodel", exp.name


def test_checkpoint_prefix_and_the_keras_alternative_are_accepted(tmp_path):
    exp = experiment_lib.Experiment.load(os.path.join(CONFIGS_DIR, "R_RMI_unc.json"))
    prefix = tmp_path / "ResNet101_init.tfmodel"
    (tmp_path / "ResNet101_init.tfmodel.index").write_bytes(b"")
    exp.pretrained = str(prefix)
    assert exp.run_config(str(tmp_path)).train.pretrained == str(prefix)
    h5 = tmp_path / "resnet101_weights_tf_dim_ordering_tf_kernels.h5"
    h5.write_bytes(b"")
    assert exp.run_config(str(tmp_path), pretrained=str(h5)).train.pretrained == str(h5)
    with pytest.raises(FileNotFoundError, match="--pretrained"):
        exp.run_config(str(tmp_path), pretrained=str(tmp_path / "absent.h5"))


def test_every_experiment_file_is_a_partial_run_config_that_validates():
    from tf_rmi import config

    paths = sorted(glob.glob(os.path.join(CONFIGS_DIR, "*.json")))
    assert len(paths) == 16
    for path in paths:
        with open(path) as f:
            values = json.load(f)
        del values["experiment"]
        assert set(config.check_partial(values, path)) == {"data", "model", "train"}, path
        exp = experiment_lib.Experiment.load(path)
        exp.pretrained = None  # the weight files are not in the checkout
        assert exp.run_config("records").validate() is not None


def test_an_experiment_file_with_an_unknown_field_is_refused(tmp_path):
    with open(os.path.join(CONFIGS_DIR, "D_RMI_unc.json")) as f:
        values = json.load(f)
    values["train"]["learning_rat"] = 0.1
    path = tmp_path / "typo.json"
    path.write_text(json.dumps(values))
    with pytest.raises(ValueError, match="unknown field train.learning_rat; valid train fields"):
        experiment_lib.Experiment.load(str(path))
