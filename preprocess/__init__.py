"""Dataset preparation: raw datasets to sharded TFRecords."""
