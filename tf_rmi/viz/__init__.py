"""Figures in the paper's style (`visualize`): Fig. 5-7 rows, learning curves."""
