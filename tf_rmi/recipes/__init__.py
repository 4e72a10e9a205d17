"""Whole-pipeline recipes: the synthetic-set demo (`demo_lib`) and the
paper's Table 1 experiments (`experiment_lib`)."""
