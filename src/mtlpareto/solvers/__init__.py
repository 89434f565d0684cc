"""Solvers for the sub-problems of the multi-task methods."""

from mtlpareto.solvers.min_norm import MinNormSolverError, min_norm_weights, min_norm_weights_from_gram

__all__ = ["MinNormSolverError", "min_norm_weights", "min_norm_weights_from_gram"]
