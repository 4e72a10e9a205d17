"""`python -m tf_rmi.import_weights`: an alias of `tf_rmi import`
(tf_rmi/cli/import_weights.py), kept for older scripts."""
from tf_rmi.cli import alias

run = alias("import", "import_weights")

if __name__ == "__main__":
    run()
