"""Serving: image + sentence in, mask out. `inference` owns the pre- and
post-processing shared by evaluation, prediction, export and the figures;
`predict` runs a run directory or a SavedModel on user images; `export_lib`
writes the SavedModel, whose graphs use the pure-TensorFlow twins in `graph_ops`."""
