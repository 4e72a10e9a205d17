"""Evaluation: scoring a run on a split (`eval_lib`), the paper's metrics
(`metrics`) and DenseCRF refinement (`crf`)."""
