# The two commands: `make demo` (runs the product on this machine) and `make test`.
# Each creates the virtual environment and installs the product on first use.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
INSTALLED = $(VENV)/.installed

.PHONY: demo test test-slow test-browser test-all lint format clean csdl-schemas graphiql-assets ui-assets mutation

$(INSTALLED): setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(INSTALLED)

demo: $(INSTALLED) graphiql-assets ui-assets csdl-schemas  ## sandbox -> sync -> pipeline -> API on http://127.0.0.1:8000
	$(BIN)/mls2 demo

test: $(INSTALLED) csdl-schemas  ## the fast suite (default), on up to 4 processes
	$(BIN)/pytest -m "not slow and not browser" --numprocesses auto --maxprocesses 4

test-slow: $(INSTALLED) csdl-schemas  ## end-to-end and heavy suites (CI runs these too)
	$(BIN)/pytest -m slow

test-browser: $(INSTALLED) graphiql-assets ui-assets  ## pages in headless Chromium (needs Debian's chromium package; CI installs it)
	$(BIN)/pytest -m browser

test-all: $(INSTALLED) graphiql-assets ui-assets csdl-schemas
	$(BIN)/pytest

MODULE ?=
mutation: $(INSTALLED)  ## mutation testing (docs/TESTING.md); one module: make mutation MODULE=ingestion/client.py [SAMPLE=40 [SEED=7]]
	@# mutmut copies data files (SQL, YAML) into mutants/ only once and keeps files the source no
	@# longer has: refresh the one, drop the other, first
	@[ ! -d mutants ] || find ingestion pipelines graphql_odata conf -type f ! -name '*.py' ! -path '*/__pycache__/*' \
		-exec cp -p --parents {} mutants/ \;
	@[ ! -d mutants ] || cp -rp docs benchmarks README.md setup.py Makefile .env.example pyproject.toml databricks.yml requirements.txt mutants/
	@[ ! -d mutants ] || (cd mutants && find ingestion pipelines graphql_odata conf -type f ! -name '*.meta' ! -name '*.spans' \
		! -path '*/__pycache__/*' | while read -r file; do [ -e "../$$file" ] || rm -f "$$file" "$$file.meta"; done)
	$(BIN)/mutmut run --max-children 2 $(if $(SAMPLE),$$($(BIN)/python -m tests.mutation_score --module $(MODULE) --sample $(SAMPLE) $(if $(SEED),--seed $(SEED))),$(if $(MODULE),"$(subst /,.,$(basename $(MODULE))).*"))
	$(BIN)/python -m tests.mutation_score $(if $(MODULE),--module $(MODULE))

CSDL_SCHEMAS = graphql_odata/certification/csdl

csdl-schemas: $(CSDL_SCHEMAS)/edmx.xsd  ## OASIS CSDL 4.01 XML schemas (npm package odata-csdl), which `mls2 reso check` validates $$metadata with

$(CSDL_SCHEMAS)/edmx.xsd:
	rm -rf .cache/odata-csdl && mkdir -p .cache/odata-csdl $(CSDL_SCHEMAS)
	cd .cache/odata-csdl && npm pack --silent odata-csdl@0.11.2 >/dev/null && tar xzf odata-csdl-0.11.2.tgz
	cp .cache/odata-csdl/package/schemas/*.xsd $(CSDL_SCHEMAS)/

GRAPHIQL_ASSETS = graphql_odata/graphql/assets
GRAPHIQL_PACKAGES = graphiql@4.1.2 react@18.3.1 react-dom@18.3.1

graphiql-assets: $(GRAPHIQL_ASSETS)/graphiql.min.js  ## GraphiQL's built files from npm, served by /graphql (no CDN)

$(GRAPHIQL_ASSETS)/graphiql.min.js:
	rm -rf .cache/graphiql && mkdir -p .cache/graphiql $(GRAPHIQL_ASSETS)
	cd .cache/graphiql && npm pack --silent $(GRAPHIQL_PACKAGES) >/dev/null \
		&& for tarball in $(subst @,-,$(GRAPHIQL_PACKAGES)); do mkdir $${tarball%-*} && tar xzf $$tarball.tgz -C $${tarball%-*}; done
	cp .cache/graphiql/graphiql/package/graphiql.min.css .cache/graphiql/react/package/umd/react.production.min.js \
		.cache/graphiql/react-dom/package/umd/react-dom.production.min.js $(GRAPHIQL_ASSETS)/
	for package in graphiql react react-dom; do cp .cache/graphiql/$$package/package/LICENSE $(GRAPHIQL_ASSETS)/LICENSE.$$package; done
	cp .cache/graphiql/graphiql/package/graphiql.min.js $(GRAPHIQL_ASSETS)/

UI_ASSETS = pipelines/ui/static/vendor

UI_PACKAGES = mermaid@12.3.0 chart.js@4.6.1

ui-assets: $(UI_ASSETS)/chart.umd.min.js  ## the pipeline UI's graph and chart libraries (npm: mermaid, chart.js), served from /ui/static (no CDN)

$(UI_ASSETS)/chart.umd.min.js:
	rm -rf .cache/ui-assets && mkdir -p .cache/ui-assets $(UI_ASSETS)
	cd .cache/ui-assets && npm pack --silent $(UI_PACKAGES) >/dev/null \
		&& for tarball in $(subst @,-,$(UI_PACKAGES)); do mkdir $${tarball%-*} && tar xzf $$tarball.tgz -C $${tarball%-*}; done
	cp .cache/ui-assets/mermaid/package/LICENSE $(UI_ASSETS)/LICENSE.mermaid
	cp .cache/ui-assets/chart.js/package/LICENSE.md $(UI_ASSETS)/LICENSE.chart.js.md
	cp .cache/ui-assets/mermaid/package/dist/mermaid.min.js $(UI_ASSETS)/
	cp .cache/ui-assets/chart.js/package/dist/chart.umd.min.js $(UI_ASSETS)/

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(INSTALLED)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) .mls2 .pytest_cache .ruff_cache .cache build *.egg-info mutants $(GRAPHIQL_ASSETS)
