"""`python -m tf_rmi.train`: an alias of `tf_rmi train`
(tf_rmi/cli/train.py), kept for older scripts."""
from tf_rmi.cli import alias

run = alias("train", "train")

if __name__ == "__main__":
    run()
