"""Data: text, images, TFRecord schema, dataset readers, input pipelines."""
