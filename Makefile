# Everything from nothing: `make test` and `make run` create .venv and install what they need.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
RANKS  ?= 4
# the documentation site, offline, from docs/ and the docstrings; strict: a broken link or reference fails
# (never with --quiet: mkdocs then drops the warnings that --strict counts)
DOCS   := $(BIN)/mkdocs build --strict -d build/docs
# torch/torchvision pinned to builds known to work together; override on clusters: make TORCH_PIN="torch torchvision"
TORCH_PIN ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install run test lint docs bench clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH_PIN)
	$(BIN)/pip install --quiet -e '.[all]'
	touch $@

run: install
	$(BIN)/mpiexec -n $(RANKS) $(BIN)/python -m mpi4py run.py

test: install
	$(BIN)/ruff check evohpo tests bench tutorials docs run.py
	$(DOCS)
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check evohpo tests bench tutorials docs run.py

docs: install
	$(DOCS)

bench: install
	$(BIN)/python bench/core.py
	$(BIN)/python bench/overhead.py

clean:
	rm -rf $(VENV) build *.egg-info
