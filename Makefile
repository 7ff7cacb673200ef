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
# `ros2 launch` (launch, launch_ros, ros2cli: no PyPI wheels) from their vendored sources, also only
# where no ROS 2 is sourced; without the sources setup says so in one line and the launch tests skip.
ROS_SRC ?= $(or $(DEPTH_ATTN_ROS_SRC),$(if $(DEPTH_ATTN_SHARED),$(DEPTH_ATTN_SHARED),../shared)/vendor/ros2)
ROS_LAUNCH_STAMP := $(VENV)/.ros-launch-stamp

.PHONY: setup demo test lint bench clean

setup: $(STAMP) $(if $(ROS_DISTRO),,$(ROS_LAUNCH_STAMP))

$(STAMP): requirements/core.txt requirements/ros.txt requirements/dev.txt setup.py
	@test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(PIP) install -q -r requirements/core.txt -r requirements/dev.txt $(ROS_REQS)
	$(PIP) install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

$(ROS_LAUNCH_STAMP): requirements/ros-launch.txt tools/setup_ros_launch.sh | $(STAMP)
	@bash tools/setup_ros_launch.sh $(VENV) $(ROS_SRC) $@

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
