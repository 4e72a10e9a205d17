"""`python -m tf_rmi.evaluate`: an alias of `tf_rmi evaluate`
(tf_rmi/cli/evaluate.py), kept for older scripts."""
from tf_rmi.cli import alias

run = alias("evaluate", "evaluate")

if __name__ == "__main__":
    run()
