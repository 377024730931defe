"""Evaluation: metrics, alignment, named protocols, dataset readers and the runner."""
