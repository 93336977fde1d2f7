# Two commands matter: `make up` runs the system, `make test` runs every check.
# Both install what they need from this repository's own files.

PYTHON ?= python3
VENV ?= .venv
STATE ?= $(or $(TL_STATE_DIR),$(CURDIR)/.local)
BIN := $(VENV)/bin
INFRA := deploy/local/infra.sh
SERVICES := deploy/local/services.sh

.PHONY: up down status test check bench install infra keys admin

up: install infra keys  ## start Kafka, PostgreSQL and every service; print where the APIs are
	$(SERVICES) start
	@echo "First time? Create the first administrator: make admin ADMIN_ID=... ADMIN_NAME='...' ADMIN_SITE=..."

admin: install  ## create the first administrator (asks for the password); refused once users exist
	. $(STATE)/env && . $(STATE)/keys.env && $(BIN)/python -m services.identity bootstrap-admin \
		--user-id "$(ADMIN_ID)" --name "$(ADMIN_NAME)" --site "$(ADMIN_SITE)"

down:  ## stop the services, then Kafka and PostgreSQL (data is kept in $(STATE))
	$(SERVICES) stop
	$(INFRA) stop

status:
	-$(INFRA) status
	-$(SERVICES) status

test: install infra  ## lint, type-check, and run the whole suite on the real broker and database
	. $(STATE)/env && $(BIN)/ruff check . && $(BIN)/mypy && $(BIN)/python -m pytest $(PYTEST_ARGS)

check: install  ## the checks that need no infrastructure
	$(BIN)/ruff check . && $(BIN)/mypy

bench: install infra  ## benchmarks (on demand; not part of make test)
	. $(STATE)/env && $(BIN)/python -m bench.ingest && $(BIN)/python -m bench.rebuild && $(BIN)/python -m bench.verify

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

infra:
	$(INFRA) start

keys: install  ## Ed25519 key pairs for tokens and record signatures, made once, kept in $(STATE)/keys
	$(BIN)/python -m shared.keys $(STATE)/keys > $(STATE)/keys.env
