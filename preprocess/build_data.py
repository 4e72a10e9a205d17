"""`python -m preprocess.build_data`: an alias of `tf_rmi preprocess`
(tf_rmi/cli/preprocess.py), kept for older scripts."""
from tf_rmi.cli import alias

run = alias("preprocess", "build_data")

if __name__ == "__main__":
    run()
