"""Arrow schemas of the data contracts (see DESIGN.md section 3)."""

import hashlib
from typing import Literal

import pyarrow as pa

# Each quality check's score on a variant (`ray_align/data/quality.py`; null when off).
SCORES = pa.struct([("script", pa.float64()), ("langid", pa.float64()),
                    ("similarity", pa.float64()), ("length_ratio", pa.float64())])

VARIANT = pa.struct(
    [
        ("lang", pa.string()),
        ("prompt", pa.string()),
        ("chosen", pa.string()),
        ("rejected", pa.string()),
        ("context", pa.list_(pa.string())),
        ("quality", pa.float64()),  # the lowest quality score in [0, 1] (1.0: the anchor)
        ("translator", pa.string()),
        ("scores", SCORES),  # each quality check's score (null: check off, or the anchor)
    ]
)

GROUP = pa.schema(
    [("group_id", pa.string()), ("anchor_lang", pa.string()), ("variants", pa.list_(VARIANT))]
)

REJECT = pa.schema(
    [
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("file", pa.string()),
        ("row", pa.int64()),  # 0-based line / row in `file`
        ("record", pa.string()),  # the offending input, as JSON (or its repr if not decodable)
    ]
)


def group_id(source_id: str) -> str:
    """Stable id of the equivalence group of a source example."""
    return hashlib.sha1(source_id.encode()).hexdigest()[:16]


Split = Literal["train", "validation", "test"]


def split_of(gid: str, test_fraction: float, validation_fraction: float = 0.0) -> Split:
    """Deterministic split of groups by id hash: `test` (evaluation only), `validation`
    (search trials are scored on it; never trained on), `train` (the rest)."""
    u = int(gid[:8], 16) / 0xFFFFFFFF
    if u < test_fraction:
        return "test"
    return "validation" if u < test_fraction + validation_fraction else "train"
