"""ray-align: batch-wise cross-lingual alignment of LLMs on Ray (arXiv 2509.23659)."""

__version__ = "0.1.0"
