"""The demo's orchestration at tiny sizes: every phase runs and writes its outputs."""
import json
import os

from tf_rmi.demo import DemoConfig, run_demo


def test_demo_runs_every_phase_and_writes_tables_and_figures(tmp_path):
    cfg = DemoConfig(input_size=64, small_trunk_width=4, dim=8, steps=4, batch_size=2,
                     visualize=2)
    out, work = str(tmp_path / "demo"), str(tmp_path / "work")
    summary = run_demo(cfg, out, work, crf=True, num_train_images=4, num_test_images=2,
                       progress=False)
    assert set(summary["models"]) == {"RMI", "LSTM"}
    for kind in ("RMI", "LSTM"):
        results = json.load(open(os.path.join(out, kind, "results.json")))
        assert results["split"] == "test" and results["crf"] is not None
        assert os.path.exists(os.path.join(out, kind, "fig7_results.png"))
    figures = os.listdir(os.path.join(out, "figures"))
    assert any(name.endswith("fig6_response_maps.png") for name in figures)
    assert any(name.endswith("fig5_per_word.png") for name in figures)
    table = open(os.path.join(out, "summary.md")).read()
    assert "| RMI |" in table and "| LSTM |" in table and "Targets:" in table
    assert set(summary["targets"]) >= {"rmi_overall_iou_met", "rmi_beats_lstm_on_longest"}
