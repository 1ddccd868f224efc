# The full test command is `make test`: it builds its own virtual environment,
# the test control plane (cached outside the repo), and runs every gate.

# The repo root holds operator/, which would shadow the standard library's operator
# module for any `python -m ...` started here: never put the working directory on
# sys.path (Python 3.11+).
export PYTHONSAFEPATH := 1

PYTHON ?= python3
VENV ?= .venv
UV_VERSION := 0.13.9
BIN := $(VENV)/bin
MYPY_TREE := build/typecheck

.PHONY: test venv lint typecheck pytest unit testbin crd lock clean

test: venv lint typecheck testbin pytest

venv: $(VENV)/.installed

# Reinstalled only when the dependencies or their lock change. uv and pip keep
# their wheel caches under ~/.cache, outside the repo, so a warm machine is fast.
$(VENV)/.installed: pyproject.toml requirements/dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --python $(BIN)/python -c requirements/dev.lock -e '.[dev]'
	touch $@

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy cannot follow the editable install's import hook, so it checks a link
# tree shaped like the installed package.
typecheck: venv
	rm -rf $(MYPY_TREE) && mkdir -p $(MYPY_TREE)
	cp -rs $(CURDIR)/seaway $(MYPY_TREE)/seaway
	for d in operator registry serving_runtime; do cp -rs $(CURDIR)/$$d $(MYPY_TREE)/seaway/$$d; done
	find $(MYPY_TREE) -name __pycache__ -prune -exec rm -rf {} +
	cd $(MYPY_TREE) && ../../$(BIN)/mypy --config-file ../../pyproject.toml -p seaway

testbin:
	bash tests/cluster/build.sh

# pytest's exit code 5 means it collected nothing: say so and fail, an empty
# run proves nothing.
pytest: venv
	$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; fi; exit $$rc

unit: venv
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

crd: venv
	$(BIN)/seaway crd > charts/seaway/crds/inferencemodels.seaway.dev.yaml

# dev.lock: what the tests install; runtime.lock: what the runtime image installs.
lock: venv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --quiet --custom-compile-command "make lock" \
	  -o requirements/dev.lock
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --quiet --custom-compile-command "make lock" \
	  -c requirements/dev.lock -o requirements/runtime.lock

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
