# Two commands matter: `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CATALOG ?= ../shared/data/fashion_product_images
LIMIT ?= 3000
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=

.PHONY: demo test fuzz venv db migrate import embed scan duplicates looks similar serve worker beat bench evaluate clean-db train train-segmenter load check-index

# Python 3.11 is what the machines have; fall back to python3 when the versioned name is absent.
$(STAMP): requirements.txt requirements-nodeps.txt
	@command -v $(PYTHON) >/dev/null || { echo "python3.11 not found, using python3"; }
	@test -x $(PY) || $$(command -v $(PYTHON) || command -v python3) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	@touch $(STAMP)

venv: $(STAMP)

migrate: venv
	$(PY) manage.py migrate --noinput

import: migrate
	$(PY) manage.py import_catalog $(CATALOG) --limit $(LIMIT)

embed: import
	$(PY) manage.py embed_catalog --only-missing --no-duplicates

# Duplicate listings for the review queue, in bulk through the finished index; re-runs skip checked images.
duplicates: embed
	$(PY) manage.py scan_duplicates --only-unchecked

# "Complete the look" of every product from its own photo (the workers keep it fresh afterwards).
looks: embed
	$(PY) manage.py compute_looks

# Each product's similar-items strip, so that product pages read it instead of searching (the workers keep it fresh).
similar: embed
	$(PY) manage.py compute_similar

demo: duplicates looks similar
	$(PY) manage.py collectstatic --noinput -v0
	@echo ""
	@echo "  Vitrine is serving on http://$(HOST):$(PORT)/   (admin: http://$(HOST):$(PORT)/admin/, API docs: http://$(HOST):$(PORT)/api/docs/)"
	@echo ""
	$(PY) manage.py runserver $(HOST):$(PORT) --noreload

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

# The API driven by its OpenAPI schema (schemathesis), with more examples than `make test`
# runs and a fresh seed each time (FUZZ_SEED=<n> repeats a run).
FUZZ_EXAMPLES ?= 200
FUZZ_SEED ?= $(shell date +%s)
fuzz: venv
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_SEED=$(FUZZ_SEED) $(PY) -m pytest tests/api/test_schema_fuzz.py -p no:cacheprovider $(PYTEST_ARGS)

worker: venv
	$(VENV)/bin/celery -A workers worker --loglevel=INFO -Q embeddings,default --concurrency=1 --prefetch-multiplier=1

beat: venv
	$(VENV)/bin/celery -A workers beat --loglevel=INFO

# Retrieval quality and speed (docs/benchmarks.md). Quick: small smoke runs (CI runs them
# through pytest); full: the tables of docs/benchmarks.md (evaluate embeds ~15k images once,
# then reads var/cache/evaluate; bench builds HNSW indexes up to 1M vectors: 45-60 minutes on 2 cores).
EVALUATE_ARGS ?=
BENCH_ARGS ?=
evaluate: migrate
	$(PY) manage.py evaluate $(EVALUATE_ARGS)

bench: migrate
	$(PY) manage.py bench $(BENCH_ARGS)

# Bounded mixed-traffic load test: Locust (lab/benchmarks/locustfile.py, headless) against
# gunicorn on loopback, 1/4/8/16 users x 30 s (needs `make embed` first); reports/load.{json,md}
# and Locust's CSV and HTML per level. Drift between images and embeddings: check-index (FIX=1 repairs).
LOAD_ARGS ?=
load: migrate
	$(PY) manage.py load_test $(LOAD_ARGS)

check-index: migrate
	$(PY) manage.py check_index $(if $(FIX),--fix,)

# Fine-tune the embedding (triplet, category and instance terms, hard negatives) on the shared
# data and score it on its hold-out against the ImageNet features (docs/benchmarks.md,
# "Fine-tuned embedding"). The default reproduces the shipped default model
# (visualsearch/embedding/shipped/efficientnet_lite0-vitrine-v10, see its MODEL_CARD.md) under
# another name: the head, the backbone's last two MBConv blocks and last stage, bfloat16
# autocast, 16 epochs. First run: ~11-15 minutes caching the backbone maps of 52,512 views in
# var/cache/train (ONNX Runtime), then ~3.5 minutes an epoch on 2 quiet cores (v10: 63 minutes
# of training, 2 more for its category head). An interrupted run resumes. Then: manage.py models
# index $(MODEL_NAME), promote.
MODEL_NAME ?= efficientnet_lite0-vitrine-v10-repro
TRAIN_ARGS ?= --train-last-stage --train-blocks 2 --precision bfloat16 --epochs 16 --threads 2
train: migrate
	@if [ -f var/models/$(MODEL_NAME)/metadata.json ]; then echo "var/models/$(MODEL_NAME) exists: not retrained (remove it, or MODEL_NAME=...-v2)"; \
	else $(PY) manage.py train_embedder --name $(MODEL_NAME) --resume $(TRAIN_ARGS); fi
	$(PY) manage.py evaluate --model $(MODEL_NAME) --holdout $(MODEL_NAME) --no-baseline --no-duplicates

# The flat-lay garment segmenter of shop the look (visualsearch/segmenter.py), trained on composites of
# training-side catalogue garments pasted onto real surfaces (lab/training/segmenter.py): the default
# reproduces the shipped visualsearch/garment_models/flatlay-unet-v1 (see its MODEL_CARD.md) under
# var/garment_models, ~2 minutes rendering then ~2 minutes an epoch on 2 cores; then scores it on the hold-out.
SEGMENTER_NAME ?= flatlay-unet-v1-repro
SEGMENTER_ARGS ?=
train-segmenter: migrate
	$(PY) manage.py train_segmenter --out var/garment_models/$(SEGMENTER_NAME) $(SEGMENTER_ARGS)
	VISUALSEARCH_FLATLAY_SEGMENTER=var/garment_models/$(SEGMENTER_NAME) $(PY) manage.py evaluate_looks --holdout efficientnet_lite0-vitrine-v7 --out reports/looks-$(SEGMENTER_NAME)
