"""`python -m tf_rmi.cli <command> ...`, the same as `tf_rmi <command> ...`."""
from tf_rmi.cli import run

if __name__ == "__main__":
    run()
