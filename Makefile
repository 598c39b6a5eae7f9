# The two commands: `make demo` (runs the product on this machine) and `make test`.
# Each creates the virtual environment and installs the product on first use.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
INSTALLED = $(VENV)/.installed

.PHONY: demo test test-slow test-all lint format clean csdl-schemas mutation

$(INSTALLED): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

demo: $(INSTALLED)  ## sandbox -> sync -> pipeline -> API on http://127.0.0.1:8000
	$(BIN)/mls2 demo

test: $(INSTALLED)  ## the fast suite (default)
	$(BIN)/pytest -m "not slow"

test-slow: $(INSTALLED)  ## end-to-end and heavy suites (CI runs these too)
	$(BIN)/pytest -m slow

test-all: $(INSTALLED)
	$(BIN)/pytest

MODULE ?=
mutation: $(INSTALLED)  ## mutation testing (docs/TESTING.md); one module: make mutation MODULE=ingestion/client.py
	@# mutmut copies data files (SQL, YAML) into mutants/ only once and keeps files the source no
	@# longer has: refresh the one, drop the other, first
	@[ ! -d mutants ] || find ingestion pipelines graphql_odata conf -type f ! -name '*.py' ! -path '*/__pycache__/*' \
		-exec cp -p --parents {} mutants/ \;
	@[ ! -d mutants ] || cp -rp docs benchmarks README.md setup.py Makefile .env.example pyproject.toml databricks.yml mutants/
	@[ ! -d mutants ] || (cd mutants && find ingestion pipelines graphql_odata conf -type f ! -name '*.meta' ! -name '*.spans' \
		! -path '*/__pycache__/*' | while read -r file; do [ -e "../$$file" ] || rm -f "$$file" "$$file.meta"; done)
	$(BIN)/mutmut run --max-children 2 $(if $(MODULE),"$(subst /,.,$(basename $(MODULE))).*")
	$(BIN)/python -m tests.mutation_score $(if $(MODULE),--module $(MODULE))

CSDL_SCHEMAS = .cache/odata-csdl/package/schemas

csdl-schemas: $(CSDL_SCHEMAS)/edmx.xsd  ## OASIS CSDL 4.01 XML schemas (npm package odata-csdl) for the $$metadata test

$(CSDL_SCHEMAS)/edmx.xsd:
	mkdir -p .cache/odata-csdl
	cd .cache/odata-csdl && npm pack --silent odata-csdl@0.11.2 && tar xzf odata-csdl-0.11.2.tgz

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .mls2 .pytest_cache .ruff_cache .cache build *.egg-info mutants
