"""Map navigation over relief through both nodes over DDS: map_dem of the geometry node, a DEM off the map."""

import numpy as np
import pytest

from feature_matching_ros.cli import simulate
from feature_matching_ros.core.errors import FeatureMatchingError
from feature_matching_ros.ros.bags.flight_bag import read_truth

pytestmark = pytest.mark.ros


@pytest.fixture(scope="module")
def hilly_flight(tmp_path_factory):
    out = tmp_path_factory.mktemp("ros-relief") / "flight"
    args = ["--out", str(out), "--frames", "4", "--map-size", "1024", "--seed", "3", "--relief", "50"]
    assert simulate.main([*args, "--relief-wavelength", "500", "--altitude-variation", "0"]) == 0
    return out


def _parameters(flight, dem):
    map_image = str(flight / "map.png")
    return {
        "feature_matcher": {"reference_mode": "map", "map_image": map_image, "matcher": "sift"},
        "geometry": {"mode": "map", "map_image": map_image, "map_dem": str(dem)},
    }


def test_the_geometry_node_fixes_over_the_dem(ros_context, hilly_flight):
    from feature_matching_ros.ros.bags.pipeline_run import run_on_bag

    outcomes = run_on_bag(
        hilly_flight / "bag",
        _parameters(hilly_flight, hilly_flight / "dem.tif"),
        exclude=["ground_truth/pose"],
    )
    truth = read_truth(hilly_flight / "bag")
    assert len(outcomes) == 4
    for outcome in outcomes:
        assert outcome.geometry.pose_published, outcome.geometry.pose_status
        p = outcome.pose.pose.pose.position
        expected = truth.at(outcome.stamp_ns)[0]  # z: the height above the ground under the camera
        assert np.linalg.norm(np.array([p.x, p.y]) - expected[:2]) < 1.0
        assert abs(p.z - expected[2]) < 0.5


def test_a_dem_off_the_map_is_reported_not_flown_flat(ros_context, hilly_flight, tmp_path):
    import rasterio
    from rasterio.transform import from_origin

    far = tmp_path / "far.tif"
    profile = dict(driver="GTiff", width=20, height=20, count=1, dtype="float32", crs="EPSG:4326")
    with rasterio.open(far, "w", **profile, transform=from_origin(20.0, 10.0, 0.001, 0.001)) as ds:
        ds.write(np.full((20, 20), 300.0, np.float32), 1)
    from feature_matching_ros.ros.bags.pipeline_run import run_on_bag

    with pytest.raises(FeatureMatchingError, match="covers none of the map"):
        run_on_bag(
            hilly_flight / "bag",
            _parameters(hilly_flight, far),
            exclude=["ground_truth/pose"],
            answer_timeout=2.0,
        )


def test_the_navigator_node_navigates_over_the_dem_and_its_fix_altitude_is_the_terrains(
    ros_context, hilly_flight
):
    from rclpy.parameter import Parameter

    from feature_matching_ros.core.maps.georef import load_map
    from feature_matching_ros.ros.bags.flight_bag import read_flight
    from feature_matching_ros.ros.infrastructure.spin import make_executor
    from feature_matching_ros.ros.nodes.navigator_node import NavigatorNode

    from ..conftest import spin_until
    from .test_navigator_node import Pilot

    overrides = {"map_image": str(hilly_flight / "map.png"), "map_dem": str(hilly_flight / "dem.tif")}
    overrides["background_search"] = False  # every frame searched in its step, however fast they come
    node = NavigatorNode(
        context=ros_context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]
    )
    pilot = Pilot(ros_context)
    executor = make_executor(ros_context)
    executor.add_node(node)
    executor.add_node(pilot.harness.node)
    geomap = load_map(hilly_flight / "map.png", dem=hilly_flight / "dem.tif")
    try:
        spin_until(executor, lambda: node.ready, 60.0, "the navigator to load the map and the DEM")
        pilot.harness.wait_for_subscribers(executor)
        spin_until(executor, lambda: pilot.range_pub.get_subscription_count() > 0, what="the aids")
        publishers = [p for p in node.publishers if p.topic_name.lstrip("/") in ("pose", "fix", "geometry")]
        spin_until(executor, lambda: all(p.get_subscription_count() > 0 for p in publishers), what="outputs")
        for frame in read_flight(hilly_flight / "bag"):
            pilot.publish(frame, frame.stamp)
            status, pose, _, fix = pilot.answer(executor, frame.stamp)
            assert status.pose_published and status.pose_status.startswith("fix"), status.pose_status
            p = pose.pose.pose.position
            truth = frame.truth_position  # z: the height above the ground under the camera
            assert np.linalg.norm(np.array([p.x, p.y]) - truth[:2]) < 1.0 and abs(p.z - truth[2]) < 0.5
            ground = geomap.terrain.elevation(truth[None, :2])[0]
            altitude = geomap.georef.to_geodetic(truth[0], truth[1], truth[2] + ground)[2]
            assert abs(fix.altitude - altitude) < 0.5  # the DEM's ground plus the height above it
    finally:
        executor.shutdown()
        node.destroy_node()
        pilot.harness.destroy()
