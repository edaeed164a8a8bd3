"""mtlkit: a teaching and experimentation kit for multi-task learning in recommender systems.

The package is the single source of truth; the notebooks in ``notebooks/`` derive each idea
and check that the ``mtlkit`` version gives the same numbers as an independent reference.
"""

__version__ = "0.1.0"
