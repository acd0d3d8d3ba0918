"""CameraInfo to CameraModel: a real calibration, binning, ROI, scaling and one specific error per bad one."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from sensor_msgs.msg import CameraInfo

from feature_matching_ros.core.errors import FeatureMatchingError
from feature_matching_ros.ros.conversions.camera import CameraInfoError, CameraModel, camera_from_info

pytestmark = pytest.mark.ros


def seneca(**fields: object) -> CameraInfo:
    """The Seneca flight camera: 800x600, fx = fy = 557.5, principal point at the centre, no distortion."""
    msg = CameraInfo(width=800, height=600, distortion_model="plumb_bob")
    msg.header.frame_id = "camera_optical"
    msg.d = [0.0] * 5
    msg.k = [557.5, 0.0, 400.0, 0.0, 557.5, 300.0, 0.0, 0.0, 1.0]
    msg.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    msg.p = [557.5, 0.0, 400.0, 0.0, 0.0, 557.5, 300.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    for name, value in fields.items():
        setattr(msg, name, value)
    return msg


def with_k(**entries: float) -> CameraInfo:
    k = dict(zip(["fx", "s", "cx", "k3", "fy", "cy", "k6", "k7", "k8"], seneca().k.tolist(), strict=True))
    k.update(entries)
    return seneca(k=list(k.values()))


def test_seneca_camera():
    camera = camera_from_info(seneca())
    assert (camera.width, camera.height, camera.frame_id, camera.distortion_model) == (
        800,
        600,
        "camera_optical",
        "plumb_bob",
    )
    np.testing.assert_array_equal(camera.K, [[557.5, 0, 400], [0, 557.5, 300], [0, 0, 1]])
    assert camera.K.dtype == np.float64 and camera.D.dtype == np.float64
    np.testing.assert_array_equal(camera.D, np.zeros(5))
    assert (camera.fx, camera.fy, camera.cx, camera.cy) == (557.5, 557.5, 400.0, 300.0)
    camera.check_size(800, 600)


def test_the_model_is_frozen():
    camera = camera_from_info(seneca())
    with pytest.raises(ValueError, match="read-only"):
        camera.K[0, 0] = 1.0
    with pytest.raises(ValueError, match="read-only"):
        camera.D[0] = 1.0
    with pytest.raises(AttributeError):
        camera.width = 10
    assert issubclass(CameraInfoError, FeatureMatchingError)


def test_the_model_projects_like_opencv():
    info = seneca(d=[-0.1, 0.01, 0.001, -0.002, 0.0])
    camera = camera_from_info(info)
    points = np.array([[0.1, -0.2, 2.0], [-0.5, 0.3, 4.0]])
    pixels, _ = cv2.projectPoints(points, np.zeros(3), np.zeros(3), camera.K, camera.D)
    undistorted = cv2.undistortPoints(pixels, camera.K, camera.D).reshape(-1, 2)
    np.testing.assert_allclose(undistorted, points[:, :2] / points[:, 2:], atol=1e-6)


@pytest.mark.parametrize(
    ("model", "d"),
    [
        ("rational_polynomial", [0.1, -0.01, 0.0, 0.0, 0.001, 0.05, 0.0, 0.0]),
        ("equidistant", [0.01, -0.002, 0.0003, 0.0]),
        ("plumb_bob", []),
        ("", []),
    ],
)
def test_other_distortion_models(model, d):
    camera = camera_from_info(seneca(distortion_model=model, d=d))
    assert camera.distortion_model == model
    np.testing.assert_array_equal(camera.D, d)


def test_unknown_model_with_zero_coefficients_means_no_distortion():
    camera = camera_from_info(seneca(distortion_model="", d=[0.0] * 5))
    assert camera.D.shape == (0,)


@pytest.mark.parametrize(
    ("msg", "pattern"),
    [
        (seneca(k=[0.0] * 9), r"camera K is all zeros: the camera is uncalibrated"),
        (with_k(fx=math.nan), r"camera K has non-finite entries: \[nan, 0\.0, 400\.0"),
        (with_k(cy=math.inf), r"camera K has non-finite entries: .*inf"),
        (seneca(d=[0.0, math.nan, 0.0, 0.0, 0.0]), r"CameraInfo D has non-finite entries: \[0\.0, nan"),
        (with_k(fx=0.0), "camera focal lengths must be positive, got fx=0, fy=557.5"),
        (with_k(fy=-557.5), "camera focal lengths must be positive, got fx=557.5, fy=-557.5"),
        (with_k(s=1.0), r"camera K must be \[\[fx, 0, cx\], \[0, fy, cy\], \[0, 0, 1\]\]"),
        (with_k(k8=0.0), r"camera K must be \[\[fx, 0, cx\], \[0, fy, cy\], \[0, 0, 1\]\], got"),
        (with_k(cx=-1.0), r"principal point \(-1, 300\) lies outside the 800x600 image"),
        (with_k(cx=801.0), r"principal point \(801, 300\) lies outside the 800x600 image"),
        (with_k(cy=600.5), r"principal point \(400, 600.5\) lies outside the 800x600 image"),
        (seneca(width=0), "CameraInfo has zero width or height: 0x600 px"),
        (seneca(height=0), "CameraInfo has zero width or height: 800x0 px"),
        (seneca(width=0, height=0, k=[0.0] * 9), "CameraInfo has zero width or height: 0x0 px"),
        (
            seneca(distortion_model="kannala_brandt", d=[0.1, 0.0, 0.0, 0.0]),
            r"unknown distortion model 'kannala_brandt' with non-zero coefficients "
            r"\[0\.1, 0\.0, 0\.0, 0\.0\]; "
            "known: plumb_bob, rational_polynomial, equidistant",
        ),
        (seneca(distortion_model="", d=[0.1]), "unknown distortion model '' with non-zero coefficients"),
        (
            seneca(d=[0.1, 0.0, 0.0]),
            "distortion model 'plumb_bob' needs 4, 5, 8, 12 or 14 coefficients, got 3",
        ),
        (
            seneca(distortion_model="equidistant", d=[0.1] * 5),
            "distortion model 'equidistant' needs 4 coefficients, got 5",
        ),
    ],
)
def test_bad_camera_info(msg, pattern):
    with pytest.raises(CameraInfoError, match=pattern):
        camera_from_info(msg)


@pytest.mark.parametrize("f", [1e-300, 1e-6, 1.0, 39.0, 800_001.0, 1e300])
def test_implausible_focal_lengths_are_refused(f):
    """A focal length no real camera has (800x600: outside 40-800000 px) makes NaN or absurd poses."""
    for msg in (with_k(fx=f, fy=f), with_k(fy=f)):
        with pytest.raises(
            CameraInfoError, match=r"focal lengths .* implausible for a 800x600 image: .*0\.05-1000 x"
        ):
            camera_from_info(msg)


@pytest.mark.parametrize("f", [0.1 * 800, 0.3 * 800, 100 * 800, 40.0, 800_000.0])
def test_fisheye_to_long_telephoto_focal_lengths_are_accepted(f):
    camera = camera_from_info(with_k(fx=f, fy=f))
    assert camera.fx == camera.fy == f


def test_principal_point_on_the_edge_is_accepted():
    camera = camera_from_info(with_k(cx=800.0, cy=0.0))
    assert (camera.cx, camera.cy) == (800.0, 0.0)


@pytest.mark.parametrize(("width", "height"), [(400, 300), (1600, 1200), (200, 150), (401, 300)])
def test_scaled_keeps_the_field_of_view(width, height):
    camera = camera_from_info(seneca())
    scaled = camera.scaled(width, height)
    assert (scaled.width, scaled.height) == (width, height)
    sx, sy = width / 800, height / 600
    assert (scaled.fx, scaled.fy) == (557.5 * sx, 557.5 * sy)
    # Pixel centres at integer coordinates: the image centre stays the image centre.
    assert scaled.cx == pytest.approx((400 + 0.5) * sx - 0.5)
    assert scaled.cy == pytest.approx((300 + 0.5) * sy - 0.5)
    np.testing.assert_array_equal(scaled.D, camera.D)
    assert (scaled.frame_id, scaled.distortion_model) == ("camera_optical", "plumb_bob")
    # The image's outer corners see the same rays before and after scaling.
    corners = np.array([[[-0.5, -0.5]], [[799.5, 599.5]]])
    scaled_corners = np.array([[[-0.5, -0.5]], [[width - 0.5, height - 0.5]]])
    rays = cv2.undistortPoints(corners, camera.K, camera.D)
    np.testing.assert_allclose(cv2.undistortPoints(scaled_corners, scaled.K, scaled.D), rays, atol=1e-12)
    scaled.check_size(width, height)


def test_scaled_matches_a_resized_image():
    """A point seen at a pixel in the full image is seen at the scaled model's projection after cv2.resize."""
    camera = camera_from_info(seneca())
    full = np.zeros((600, 800), np.float32)
    full[290:310, 390:410] = 1.0
    full[100:120, 600:620] = 1.0
    half = cv2.resize(full, (400, 300), interpolation=cv2.INTER_AREA)
    scaled = camera.scaled(400, 300)
    for x_full, y_full in ((399.5, 299.5), (609.5, 109.5)):
        ray = cv2.undistortPoints(np.array([[[x_full, y_full]]]), camera.K, camera.D)
        x_half, y_half = (scaled.K @ np.append(ray.reshape(2), 1.0))[:2]
        ys, xs = np.nonzero(half > 0.5)
        near = (abs(xs - x_half) < 8) & (abs(ys - y_half) < 8)
        assert np.average(xs[near], weights=half[ys[near], xs[near]]) == pytest.approx(x_half, abs=1e-6)
        assert np.average(ys[near], weights=half[ys[near], xs[near]]) == pytest.approx(y_half, abs=1e-6)


@pytest.mark.parametrize(
    ("width", "height", "pattern"),
    [
        (800, 450, "cannot scale the 800x600 calibration to 800x450: the aspect ratio differs"),
        (640, 600, "cannot scale the 800x600 calibration to 640x600"),
        (0, 300, "scaled image has zero width or height: 0x300 px"),
        (400.0, 300, r"scaled image width and height must be integers, got 400\.0x300"),
    ],
)
def test_bad_scaling(width, height, pattern):
    with pytest.raises(CameraInfoError, match=pattern):
        camera_from_info(seneca()).scaled(width, height)


def test_check_size():
    camera = camera_from_info(seneca())
    with pytest.raises(
        CameraInfoError,
        match=r"image is 640x480 px but the camera info \(camera_optical\) is for 800x600 px; "
        r"if the image is binned or resized, use CameraModel\.scaled\(640, 480\)",
    ):
        camera.check_size(640, 480)
    with pytest.raises(CameraInfoError, match="image is 600x800 px"):
        camera.check_size(600, 800)


def test_binning_gives_the_binned_camera():
    camera = camera_from_info(seneca(binning_x=2, binning_y=2))
    assert (camera.width, camera.height) == (400, 300)
    np.testing.assert_allclose(camera.K, camera_from_info(seneca()).scaled(400, 300).K)
    unbinned = camera_from_info(seneca(binning_x=1, binning_y=0))
    np.testing.assert_array_equal(unbinned.K, camera_from_info(seneca()).K)


def test_roi_crops_the_camera():
    msg = seneca(binning_x=2, binning_y=2)
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = 200, 100, 400, 300
    camera = camera_from_info(msg)
    assert (camera.width, camera.height) == (200, 150)
    assert (camera.fx, camera.fy) == (557.5 / 2, 557.5 / 2)
    # The principal point (400, 300) is at (200, 200) in the crop, which bins to (99.75, 99.75).
    assert (camera.cx, camera.cy) == (99.75, 99.75)
    assert camera.frame_id == "camera_optical"


@pytest.mark.parametrize(
    ("roi", "binning", "pattern"),
    [
        (
            (700, 0, 200, 600),
            1,
            r"ROI of 200x600 px at \(700, 0\) does not lie inside the calibrated 800x600",
        ),
        ((0, 0, 0, 600), 1, r"ROI of 0x600 px at \(0, 0\) does not lie inside"),
        ((10, 10, 0, 0), 1, r"ROI of 0x0 px at \(10, 10\) does not lie inside"),
        ((0, 0, 0, 0), 1000, "CameraInfo binning 1000x1000 exceeds the 800x600 px image"),
    ],
)
def test_bad_roi_and_binning(roi, binning, pattern):
    msg = seneca(binning_x=binning, binning_y=binning)
    msg.roi.x_offset, msg.roi.y_offset, msg.roi.width, msg.roi.height = roi
    with pytest.raises(CameraInfoError, match=pattern):
        camera_from_info(msg)


@pytest.mark.parametrize(
    ("fields", "pattern"),
    [
        ({"K": np.eye(2)}, r"camera K must be 3x3, got shape \(2, 2\)"),
        ({"K": "not a matrix"}, "camera K is not a numeric array"),
        ({"D": [0.0, math.inf]}, r"camera D has non-finite entries: \[0\.0, inf\]"),
        ({"D": [[0.0], ["x"]]}, "camera D is not a numeric array"),
        ({"width": -3}, "camera has a negative width or height: -3x600 px"),
        ({"height": True}, "camera width and height must be integers, got 800xTrue"),
    ],
)
def test_bad_direct_construction(fields, pattern):
    values = {"K": [[557.5, 0, 400], [0, 557.5, 300], [0, 0, 1]], "D": [], "width": 800, "height": 600}
    values.update(fields)
    with pytest.raises(CameraInfoError, match=pattern):
        CameraModel(**values)
