"""Figures in the paper's style (`visualize`): Fig. 1/5, 6 and 7, and the mask
overlay of `tf_rmi predict` (the demo's learning curves are `recipes.demo_lib`'s)."""
