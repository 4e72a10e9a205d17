"""`python -m tf_rmi.demo`: an alias of `tf_rmi demo`
(tf_rmi/cli/demo.py), kept for older scripts."""
from tf_rmi.cli import alias

run = alias("demo", "demo")

if __name__ == "__main__":
    run()
