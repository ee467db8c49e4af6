"""The demo world stage: write the English source corpus of CLDR country facts."""

from __future__ import annotations

import json
import random
from pathlib import Path

from ray_align.config import Config
from ray_align.demo.world import build_facts, build_passages, build_questions
from ray_align.runtime import StageResult


def world_source(cfg: Config) -> Path:
    """Where `run_world` writes the demo world's English source corpus."""
    return cfg.paths.source


def run_world(cfg: Config) -> StageResult:
    """`world/source.jsonl`: English QA, each with its passage and one distractor passage."""
    path = world_source(cfg)
    out = path.parent
    out.mkdir(parents=True, exist_ok=True)
    facts = build_facts()
    passages = build_passages(facts)
    questions = build_questions(facts, passages)
    if cfg.source.demo_questions is not None:
        step = max(1, len(questions) // cfg.source.demo_questions)
        questions = questions[::step][: cfg.source.demo_questions]
    texts = [p["text"] for p in passages]
    with path.open("w") as f:
        for q in questions:
            rng = random.Random(f"{cfg.seed}:{q['id']}")
            distractor = rng.choice([t for t in texts if t not in q["context"]])
            context = [*q["context"], distractor]
            rng.shuffle(context)
            f.write(json.dumps({**q, "context": context}, ensure_ascii=False) + "\n")
    counts = {"territories": len(facts), "passages": len(passages), "questions": len(questions)}
    print(f"[world] {counts['territories']} territories, {counts['questions']} English questions "
          f"-> {path}", flush=True)
    return StageResult("world", {"source": str(path)}, counts).save(out)
