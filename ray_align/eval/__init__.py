"""Evaluation (Ray Data batch inference): retrieve -> generate -> score -> report."""
