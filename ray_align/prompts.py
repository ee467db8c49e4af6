"""The one prompt format shared by training and evaluation (retrieval-augmented QA)."""

from __future__ import annotations


def rag_prompt(question: str, passages: list[str]) -> str:
    """Passages, then the question; the model continues after 'A:'."""
    return "".join(f"{p}\n" for p in passages) + f"Q: {question}\nA:"


def answer_text(answer: str) -> str:
    """The continuation the model learns to produce (it ends at a newline or EOS)."""
    return f" {answer}\n"
