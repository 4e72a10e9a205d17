"""`python -m tf_rmi.export`: an alias of `tf_rmi export`
(tf_rmi/cli/export.py), kept for older scripts."""
from tf_rmi.cli import alias

run = alias("export", "export")

if __name__ == "__main__":
    run()
