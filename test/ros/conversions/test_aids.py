"""Attitude and altitude aids: conversion, checks and pairing with frames by stamp."""

import math
import re

import numpy as np
import pytest
from geometry_msgs.msg import QuaternionStamped
from sensor_msgs.msg import Imu, Range

from feature_matching_ros.core.geometry.frames import rotation_from_euler
from feature_matching_ros.core.geometry.ground_pose import GroundPose
from feature_matching_ros.core.geometry.pose import quaternion_from_matrix
from feature_matching_ros.core.maps.georef import GeoReference
from feature_matching_ros.ros.conversions.aids import AidError, StampedHistory, attitude_of, height_of
from feature_matching_ros.ros.conversions.messages import ground_pose_message, navsatfix_message


def test_imu_orientation_is_the_body_attitude():
    R = rotation_from_euler(0.05, -0.1, 2.0)
    msg = Imu()
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = quaternion_from_matrix(R)
    assert np.allclose(attitude_of(msg), R)
    stamped = QuaternionStamped()
    q = stamped.quaternion
    q.x, q.y, q.z, q.w = quaternion_from_matrix(R)
    assert np.allclose(attitude_of(stamped), R)


@pytest.mark.parametrize(
    ("values", "covariance0", "message"),
    [
        ((0.0, 0.0, 0.0, 0.0), 0.0, "not a unit quaternion"),
        ((math.nan, 0.0, 0.0, 1.0), 0.0, "not a unit quaternion"),
        ((0.0, 0.0, 0.0, 1.0), -1.0, "no orientation"),
    ],
)
def test_bad_attitudes_are_refused(values, covariance0, message):
    msg = Imu()
    msg.orientation.x, msg.orientation.y, msg.orientation.z, msg.orientation.w = values
    msg.orientation_covariance[0] = covariance0
    with pytest.raises(AidError, match=message):
        attitude_of(msg)


@pytest.mark.parametrize(
    ("value", "message"), [(math.nan, "positive finite"), (-3.0, "positive"), (500.0, "outside")]
)
def test_bad_heights_are_refused(value, message):
    msg = Range(range=value, min_range=0.5, max_range=200.0)
    with pytest.raises(AidError, match=message):
        height_of(msg)
    assert height_of(Range(range=120.0, min_range=0.5, max_range=200.0)) == 120.0


@pytest.mark.parametrize("value", [1e-30, 0.01, 2.0e5, 1e300])
def test_implausible_heights_are_refused_whatever_the_sensor_claims(value):
    msg = Range(range=value, min_range=0.0, max_range=0.0)  # no sensor limits given
    with pytest.raises(AidError, match=re.escape(f"altitude range {value:g} m is implausible")):
        height_of(msg)
    assert height_of(Range(range=0.05, min_range=0.0, max_range=0.0)) == 0.05


def test_history_pairs_the_nearest_sample_within_the_age_limit():
    history = StampedHistory()
    for stamp in (10.0, 10.2, 10.4, 9.9):  # out of order on purpose
        history.add(stamp, stamp * 10)
    assert history.nearest(10.25, 0.1) == 102.0
    assert history.nearest(9.95, 0.1) in (99.0, 100.0)
    assert history.nearest(11.0, 0.1) is None


def test_fix_messages_carry_the_pose_and_its_covariance():
    R = rotation_from_euler(0.0, 0.0, 1.0)
    from feature_matching_ros.core.geometry.frames import camera_rotation

    covariance = np.diag([0.04, 0.09, 0.25, 1e-4, 1e-4, 4e-4])
    pose = GroundPose(np.array([100.0, -50.0, 120.0]), camera_rotation(R), covariance, 200, 0.3)
    from std_msgs.msg import Header

    msg = ground_pose_message(pose, Header(frame_id="map"))
    assert (msg.pose.pose.position.x, msg.pose.pose.position.z) == (100.0, 120.0)
    assert np.allclose(np.array(msg.pose.covariance).reshape(6, 6), covariance)
    georef = GeoReference.north_up((0.0, 0.0), 0.5, geodetic_origin=(41.0, -81.5, 250.0))
    fix = navsatfix_message(pose, georef, Header(frame_id="base_link"))
    assert fix.altitude == pytest.approx(370.0, abs=0.01)
    assert np.allclose(
        georef.from_geodetic(fix.latitude, fix.longitude, fix.altitude), pose.position, atol=1e-6
    )
    assert np.allclose(np.array(fix.position_covariance).reshape(3, 3), covariance[:3, :3])
