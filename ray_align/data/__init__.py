"""Data stages: sources, translation backends, quality checks, grouping, rejects."""
