"""The synthetic shapes dataset (being split into modules: for now all of it
is in `scenes.py`; the next commit moves meaning, grammar and source out)."""
from tf_rmi.data.shapes.scenes import *  # noqa: F401,F403
from tf_rmi.data.shapes.scenes import _RADIUS_RANGE, _rendered  # noqa: F401  (tests)
