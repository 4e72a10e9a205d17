"""`python -m tf_rmi.pretrain_trunk`: an alias of `tf_rmi pretrain-trunk`
(tf_rmi/cli/pretrain_trunk.py), kept for older scripts."""
from tf_rmi.cli import alias

run = alias("pretrain-trunk", "pretrain_trunk")

if __name__ == "__main__":
    run()
