"""mtlpareto: multi-task learning as multi-objective optimisation, reproducible end to end."""

__version__ = "0.1.0"
