# Two commands matter: `make up` runs the system, `make test` runs every check.
# Both install what they need from this repository's own files.

PYTHON ?= python3
VENV ?= .venv
STATE ?= $(or $(TL_STATE_DIR),$(CURDIR)/.local)
BIN := $(VENV)/bin
INFRA := deploy/local/infra.sh
SERVICES := deploy/local/services.sh
COMPOSE := deploy/compose.sh
WITNESS := deploy/local/witness.sh
# `up` and `down` use docker compose where a Docker engine answers, the local processes of
# deploy/local elsewhere; TL_DEPLOY=local (or compose) decides instead. Expanded only when
# up or down run, so other targets never ask the engine.
DEPLOY = $(or $(TL_DEPLOY),$(shell docker info >/dev/null 2>&1 && echo compose || echo local))

.PHONY: up down up-local up-compose down-local down-compose status test test-compose check bench install infra browser keys admin demo witness witness-bin

up:  ## start Kafka, PostgreSQL and every service (compose or local, see DEPLOY); print where the APIs are
	@mode=$(DEPLOY); case $$mode in local|compose) $(MAKE) --no-print-directory up-$$mode ;; \
	  *) echo "TL_DEPLOY must be local or compose, not $$mode" >&2; exit 2 ;; esac

# The witness starts before the services (projections reads its URL and vkey from
# $(STATE)/witness.env) and learns the ledger's origin and checkpoint keys after them.
up-local: install infra keys witness
	$(SERVICES) start
	$(WITNESS) register
	@echo "First time? Create the first administrator: make admin ADMIN_ID=... ADMIN_NAME='...' ADMIN_SITE=..."

up-compose:
	$(COMPOSE) up

admin: install  ## create the first administrator (asks for the password); refused once users exist
	. $(STATE)/env && . $(STATE)/keys.env && $(BIN)/python -m services.identity bootstrap-admin \
		--user-id "$(ADMIN_ID)" --name "$(ADMIN_NAME)" --site "$(ADMIN_SITE)"

# Against the running system (`make up`, then `make admin` once): the administrator
# creates the demo's users. ADMIN_ID=... (or TL_DEMO_ADMIN_ID); the password is asked for,
# or taken from TL_DEMO_ADMIN_PASSWORD. SEED=... changes the values, not the outcomes.
demo: install  ## run the nine-subject demo trial through the APIs; print its summary and verify; write the auditor export
	$(BIN)/python -m tools.demo $(if $(ADMIN_ID),--admin-id "$(ADMIN_ID)") \
		$(if $(SEED),--seed "$(SEED)") --export "$(STATE)/demo-export.json"

down:  ## stop the services, then Kafka and PostgreSQL (data is kept in $(STATE) or the volumes)
	@mode=$(DEPLOY); case $$mode in local|compose) $(MAKE) --no-print-directory down-$$mode ;; \
	  *) echo "TL_DEPLOY must be local or compose, not $$mode" >&2; exit 2 ;; esac

down-local:
	$(SERVICES) stop
	$(WITNESS) stop
	$(INFRA) stop

# The local processes too: `make test` starts them even where an engine runs.
down-compose: down-local
	$(COMPOSE) down

status:
	-$(INFRA) status
	-$(WITNESS) status
	-$(SERVICES) status

test: install infra browser witness-bin  ## lint, type-check, check the layers, and run the whole suite on the real broker and database
	. $(STATE)/env && $(BIN)/ruff check . && $(BIN)/mypy && $(BIN)/lint-imports && $(BIN)/python -m pytest $(PYTEST_ARGS)

# The second test command (CI runs it after `make test`): a Docker engine where none
# answers (deploy/engine.sh, as root), then the compose stack driven through
# docs/operations.md and the image tests (tests/compose). No image registry answers in CI
# here, so the official images are replaced by stand-ins built from Debian
# (deploy/standins/build.sh); TL_COMPOSE_OFFICIAL=1 keeps the official ones.
STANDINS := deploy/standins/build.sh
test-compose: install witness-bin  ## the compose stack and the images on a real Docker engine
	deploy/engine.sh start
	$(if $(TL_COMPOSE_OFFICIAL),,$(STANDINS))
	$(if $(TL_COMPOSE_OFFICIAL),,env $$($(STANDINS) env)) \
	  $(BIN)/python -m pytest -m compose --durations=0 $(PYTEST_ARGS)

check: install  ## the checks that need no infrastructure
	$(BIN)/ruff check . && $(BIN)/mypy && $(BIN)/lint-imports

.PHONY: contracts
contracts: install  ## regenerate docs/asyncapi.yaml, docs/schemas/, docs/openapi/, studies/study-definition.schema.json, the role table of docs/security.md and docs/part11.md from the code
	$(BIN)/python -m shared.contract_docs
	$(BIN)/python -m shared.study
	$(BIN)/python -m shared.kernel.permissions --write
	$(BIN)/python -m tests.part11

BENCHES = ingest rebuild verify endpoints commands signing e2e revocation studies
bench: install infra  ## benchmarks (on demand; not part of make test): make bench BENCHES=verify
	. $(STATE)/env && for b in $(BENCHES); do $(BIN)/python -m bench.$$b || exit 1; done

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

infra:
	$(INFRA) start

browser:  ## Debian's Chromium and axe-core (npm ci in tests/browser) for the console's browser test
	$(INFRA) browser

witness-bin:  ## build litewitness and witnessctl (filippo.io/torchwood) into .cache/bin; the tests run them
	$(WITNESS) install

witness: witness-bin  ## start the ledger's witness (its own key, ssh-agent and store in $(STATE)/witness)
	$(WITNESS) start

keys: install  ## Ed25519 key pairs for tokens and record signatures, made once, kept in $(STATE)/keys
	$(BIN)/python -m shared.kernel.keys $(STATE)/keys > $(STATE)/keys.env
