"""Training: the run loop (`train_lib`), run directories (`run_dir`), the
small trunk's pretraining for the synthetic set (`trunk_pretraining`) and the
import of original-release snapshots as runs (`weights_import_lib`)."""
