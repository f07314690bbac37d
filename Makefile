# nmr developer commands. `make help` lists them.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
CONFIG ?= etc/nmr.toml

.DEFAULT_GOAL := help
.PHONY: help install run serve test test-fast lint fmt typecheck bench docker check-config clean

help: ## List the targets
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z_-]+:.*##/ {printf "  \033[36m%-13s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(BIN)/.installed ## Create .venv and install nmr with its test and dev tools

run: install ## Set up and start the server with the embedded defaults (LevelDB + local disk, port 3000)
	$(BIN)/nmr serve --config $(CONFIG)

serve: install ## Run gunicorn with docker/gunicorn.conf.py (the settings of `nmr serve`, for custom gunicorn use)
	NMR_CONFIG=$(CONFIG) $(BIN)/gunicorn -c docker/gunicorn.conf.py nmr.wsgi:app

check-config: install ## Print the effective configuration, secrets masked
	$(BIN)/nmr check-config --config $(CONFIG)

test: install ## Run the whole test suite (unit, functional, end-to-end with real npm)
	$(BIN)/pytest

test-fast: install ## Run the tests that need no real server or client
	$(BIN)/pytest -m "not e2e and not s3"

lint: install ## ruff check + ruff format --check
	$(BIN)/ruff check nmr tests bench
	$(BIN)/ruff format --check nmr tests bench

fmt: install ## Format the code with ruff
	$(BIN)/ruff check --fix nmr tests bench
	$(BIN)/ruff format nmr tests bench

typecheck: install ## mypy on the nmr package
	$(BIN)/mypy

bench: install ## Benchmark nmr against Verdaccio (and nginx static files) and print the table
	$(BIN)/python -m bench.run

docker: ## Build the Docker image (needs a Docker engine)
	docker build -f docker/Dockerfile -t nmr .

clean: ## Remove the virtualenv, caches and ./data
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info data
