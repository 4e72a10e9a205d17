"""`python -m benchmarks.run_benchmarks`: an alias of `tf_rmi bench`
(tf_rmi/cli/bench.py), kept for older scripts."""
from tf_rmi.cli import alias

run = alias("bench", "run_benchmarks")

if __name__ == "__main__":
    run()
