"""`python -m experiments.run_experiment`: an alias of `tf_rmi experiment`
(tf_rmi/cli/experiment.py), kept for older scripts."""
from tf_rmi.cli import alias

run = alias("experiment", "run_experiment")

if __name__ == "__main__":
    run()
