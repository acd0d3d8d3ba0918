"""Fixtures shared by the core's tests."""

import numpy as np
import pytest

from ..conftest import require_file


@pytest.fixture(scope="session")
def aukerman(shared_data):
    """The real aukerman orthophoto at 0.5 m/px, north up, as a map (its frame: map metres)."""
    from feature_matching_ros.core.maps.georef import GeoReference, load_map

    path = require_file(shared_data / "maps" / "aukerman.png")
    return load_map(path, GeoReference.north_up((0.0, 0.0), 0.5))


@pytest.fixture(scope="session")
def video_flight(aukerman):
    """A video camera's flight over the real aukerman orthophoto (0.5 m/px, taken as the map frame):
    40 frames of 640x480 at 10 Hz, 20 m/s, 120 m above ground, up to 5° of tilt, with ground truth.
    Returns (camera, world map, [(FlightState, image)])."""
    from feature_matching_ros.core.simulation.flight_sim import (
        APPEARANCES,
        CameraSpec,
        FlightPlan,
        fly,
        render,
    )

    world = aukerman
    camera = CameraSpec(640, 480, 60.0)
    start, heading = np.array([324.0, -230.5]), np.array([-0.973, -0.233])  # over meadow and trees
    plan = FlightPlan(np.array([start, start + 300.0 * heading]), speed=20.0, altitude=120.0, rate=10.0)
    rng = np.random.default_rng(0)
    frames = [(s, render(world, camera, s, APPEARANCES["moderate"], rng)[0]) for s in fly(plan, 40)]
    return camera, world, frames
