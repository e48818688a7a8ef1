# The two commands: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# A development run: DEBUG on (insecure fallback secret key, local hosts allowed).
export DEBUG ?= 1

.PHONY: run test lint venv clean

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py runplatform

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The suite uses its own var directory, so it never touches a running `make run`.
test: export CHATTONIC_VAR_DIR ?= $(CURDIR)/var/test
PYTEST_WORKERS ?= 2
test: venv lint
	$(PY) manage.py check
	$(PY) manage.py makemigrations --check --dry-run
	# The apps' floors (pyproject.toml [tool.importlinter]; docs/architecture.md).
	$(VENV)/bin/lint-imports --no-cache
	# Two xdist workers (tests/parallel.py: what each keeps to itself; the tests that start
	# processes run on one, in turn). PYTEST_WORKERS=0: one process, as plain pytest.
	# pytest's exit code 5 means "no tests collected": not a failure of the suite.
	$(PY) -m pytest $(if $(filter-out 0,$(PYTEST_WORKERS)),-n $(PYTEST_WORKERS) --dist loadgroup) $(PYTEST_ARGS); rc=$$?; if [ $$rc -eq 5 ]; then rc=0; fi; exit $$rc

clean:
	rm -rf $(VENV) var staticfiles
