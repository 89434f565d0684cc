"""Evaluation metrics, result aggregation and tables."""
