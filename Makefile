# Lotline. `make run` and `make test` each set up .venv on their own (only python3 >= 3.11 needed).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv run test verify-audit backup restore soak bench lint

venv: $(STAMP)

$(PY):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Lotline needs Python 3.11 or newer (set PYTHON=python3.11)")'
	$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); echo "python3 -m venv failed (on Debian/Ubuntu: apt-get install python3-venv)" >&2; exit 1; }

# Reinstall only when pyproject.toml changed since the last install.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -e '.[dev]'
	touch $(STAMP)

run: venv
	$(PY) -m lotline_run

test: venv
	$(PY) -m pytest

verify-audit: venv
	$(PY) -m lotline_run verify-audit

backup: venv
	$(PY) -m lotline_run backup $(if $(OUT),--out $(OUT))

restore: venv
	@test -n "$(BACKUP)" || { echo "usage: make restore BACKUP=<archive> [DATA_DIR=<new, empty dir>] [AUDIT_KEY_FILE=<old dir>/audit.key]" >&2; exit 2; }
	$(PY) -m lotline_run restore $(BACKUP) $(if $(DATA_DIR),--data-dir $(DATA_DIR)) $(if $(AUDIT_KEY_FILE),--audit-key-file $(AUDIT_KEY_FILE))

soak: venv
	$(PY) -m lotline_run.soak --minutes $(or $(SOAK_MINUTES),10)

bench: venv
	$(PY) -m bench

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .
