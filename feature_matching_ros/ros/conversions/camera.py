"""A pinhole camera from sensor_msgs/CameraInfo, checked so that a bad calibration fails early and clearly."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from sensor_msgs.msg import CameraInfo

from feature_matching_ros.core.errors import FeatureMatchingError


class CameraInfoError(FeatureMatchingError):
    """A CameraInfo message, or a camera model, cannot describe the camera's images."""


# The coefficient counts OpenCV takes for each model: cv2.undistortPoints for the first two,
# cv2.fisheye for equidistant.
DISTORTION_MODELS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        "plumb_bob": (4, 5, 8, 12, 14),
        "rational_polynomial": (4, 5, 8, 12, 14),
        "equidistant": (4,),
    }
)


# Bounds of the focal lengths of a CameraInfo, in multiples of the larger side of its calibrated image.
MIN_FOCAL = 0.05
MAX_FOCAL = 1000.0


@dataclass(frozen=True, eq=False)
class CameraModel:
    """A calibrated pinhole camera for raw images of ``width`` x ``height`` px.

    ``K`` is [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] and ``D`` holds the coefficients of
    ``distortion_model`` in OpenCV's order (empty: no distortion); both are float64 and read-only.
    Pixel centres are at integer coordinates, as in OpenCV and ROS.
    """

    K: np.ndarray
    D: np.ndarray
    width: int
    height: int
    frame_id: str = ""
    distortion_model: str = ""

    def __post_init__(self) -> None:
        _check_size(self.width, self.height, "camera")
        k = _camera_matrix(self.K)
        try:
            d = np.array(self.D, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise CameraInfoError("camera D is not a numeric array") from None
        if not np.isfinite(d).all():
            raise CameraInfoError(f"camera D has non-finite entries: {d.tolist()}")
        k.setflags(write=False)
        d.setflags(write=False)
        object.__setattr__(self, "K", k)
        object.__setattr__(self, "D", d)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @property
    def fx(self) -> float:
        return float(self.K[0, 0])

    @property
    def fy(self) -> float:
        return float(self.K[1, 1])

    @property
    def cx(self) -> float:
        return float(self.K[0, 2])

    @property
    def cy(self) -> float:
        return float(self.K[1, 2])

    def scaled(self, width: int, height: int) -> CameraModel:
        """The same camera for images binned or resized to ``width`` x ``height`` px.

        The aspect ratio must stay (to within a pixel of rounding): an image of another shape is
        cropped, and a crop is described by the CameraInfo's ROI, not by scaling.
        """
        _check_size(width, height, "scaled image")
        if abs(width * self.height - height * self.width) > max(self.width, self.height):
            raise CameraInfoError(
                f"cannot scale the {self.width}x{self.height} calibration to {width}x{height}: the aspect "
                "ratio differs, so the image is cropped rather than resized (a crop needs the CameraInfo ROI)"
            )
        return _rescaled(self, width / self.width, height / self.height, 0.0, 0.0, width, height)

    def check_size(self, width: int, height: int) -> None:
        """Raise CameraInfoError unless this camera describes images of ``width`` x ``height`` px."""
        if (width, height) != (self.width, self.height):
            frame = f" ({self.frame_id})" if self.frame_id else ""
            raise CameraInfoError(
                f"image is {width}x{height} px but the camera info{frame} is for "
                f"{self.width}x{self.height} px; "
                f"if the image is binned or resized, use CameraModel.scaled({width}, {height})"
            )


def camera_from_info(msg: CameraInfo) -> CameraModel:
    """The camera of the raw images that a CameraInfo describes.

    Binning and ROI are applied, so the model is for the images as published. Rectified topics
    (image_rect) are described by the message's P, not by this model. An unknown distortion model
    is accepted only with no or all-zero coefficients, which then mean no distortion.
    """
    width, height = msg.width, msg.height
    _check_size(width, height, "CameraInfo")
    try:
        k = np.array(msg.k, dtype=np.float64)
        d = np.array(msg.d, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise CameraInfoError("CameraInfo K and D must be numeric arrays") from None
    if k.size != 9:
        raise CameraInfoError(f"CameraInfo K must have 9 entries, got {k.size}")
    k = _camera_matrix(k.reshape(3, 3))
    _check_focal_lengths(k, width, height)
    if not (0.0 <= k[0, 2] <= width and 0.0 <= k[1, 2] <= height):
        raise CameraInfoError(
            f"CameraInfo principal point ({k[0, 2]:g}, {k[1, 2]:g}) lies outside the {width}x{height} image "
            "(it must lie within [0, width] x [0, height])"
        )
    model_name = msg.distortion_model
    if not np.isfinite(d).all():
        raise CameraInfoError(f"CameraInfo D has non-finite entries: {d.tolist()}")
    counts = DISTORTION_MODELS.get(model_name)
    if counts is None:
        if d.any():
            raise CameraInfoError(
                f"unknown distortion model {model_name!r} with non-zero coefficients {d.tolist()}; "
                f"known: {', '.join(DISTORTION_MODELS)}"
            )
        d = np.zeros(0)
    elif d.size and d.size not in counts:
        *most, last = map(str, counts)
        needed = f"{', '.join(most)} or {last}" if most else last
        raise CameraInfoError(f"distortion model {model_name!r} needs {needed} coefficients, got {d.size}")
    model = CameraModel(
        K=k, D=d, width=width, height=height, frame_id=msg.header.frame_id, distortion_model=model_name
    )
    return _apply_roi_and_binning(model, msg)


def _check_size(width: object, height: object, what: str) -> None:
    for value in (width, height):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise CameraInfoError(f"{what} width and height must be integers, got {width!r}x{height!r}")
    if width == 0 or height == 0:
        raise CameraInfoError(f"{what} has zero width or height: {width}x{height} px")
    if width < 0 or height < 0:
        raise CameraInfoError(f"{what} has a negative width or height: {width}x{height} px")


def _camera_matrix(K: object) -> np.ndarray:
    try:
        k = np.array(K, dtype=np.float64)
    except (TypeError, ValueError):
        raise CameraInfoError("camera K is not a numeric array") from None
    if k.shape != (3, 3):
        raise CameraInfoError(f"camera K must be 3x3, got shape {k.shape}")
    if not np.isfinite(k).all():
        raise CameraInfoError(f"camera K has non-finite entries: {k.reshape(-1).tolist()}")
    if not k.any():
        raise CameraInfoError("camera K is all zeros: the camera is uncalibrated (calibrate it first)")
    if not (k[0, 0] > 0 and k[1, 1] > 0):
        raise CameraInfoError(f"camera focal lengths must be positive, got fx={k[0, 0]:g}, fy={k[1, 1]:g}")
    if k[0, 1] != 0 or k[1, 0] != 0 or k[2].tolist() != [0.0, 0.0, 1.0]:
        raise CameraInfoError(f"camera K must be [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], got {k.tolist()}")
    return k


def _check_focal_lengths(k: np.ndarray, width: int, height: int) -> None:
    """Focal lengths a real camera can have for a ``width`` x ``height`` px calibration.

    Both must lie within [MIN_FOCAL, MAX_FOCAL] x the larger image side: a fisheye has about
    0.1-0.3 x the width (a pinhole at 0.05 x would see 169 degrees across), a long telephoto about
    100 x (0.6 degrees); 1000 x is a 0.06 degree field of view. Outside them the calibration is
    broken (e.g. fx = 1e-300 or 1e300), and poses computed with it are NaN or absurd.
    """
    side = max(width, height)
    low, high = MIN_FOCAL * side, MAX_FOCAL * side
    fx, fy = float(k[0, 0]), float(k[1, 1])
    if not (low <= fx <= high and low <= fy <= high):
        raise CameraInfoError(
            f"CameraInfo focal lengths fx={fx:g}, fy={fy:g} px are implausible for a {width}x{height} image: "
            f"they must lie within {MIN_FOCAL:g}-{MAX_FOCAL:g} x the larger image side "
            f"({low:g}-{high:g} px; a fisheye has about 0.1-0.3 x, a long telephoto about 100 x)"
        )


def _apply_roi_and_binning(model: CameraModel, msg: CameraInfo) -> CameraModel:
    roi = msg.roi
    x, y, width, height = roi.x_offset, roi.y_offset, roi.width, roi.height
    if (x, y, width, height) == (0, 0, 0, 0):
        width, height = model.width, model.height
    elif width == 0 or height == 0 or x + width > model.width or y + height > model.height:
        raise CameraInfoError(
            f"CameraInfo ROI of {width}x{height} px at ({x}, {y}) does not lie inside the calibrated "
            f"{model.width}x{model.height} image"
        )
    # Binning 0 means 1 (sensor_msgs/CameraInfo).
    bin_x, bin_y = max(msg.binning_x, 1), max(msg.binning_y, 1)
    if (x, y, width, height, bin_x, bin_y) == (0, 0, model.width, model.height, 1, 1):
        return model
    if width < bin_x or height < bin_y:
        raise CameraInfoError(f"CameraInfo binning {bin_x}x{bin_y} exceeds the {width}x{height} px image")
    return _rescaled(model, 1.0 / bin_x, 1.0 / bin_y, x, y, width // bin_x, height // bin_y)


def _rescaled(
    model: CameraModel, sx: float, sy: float, x0: float, y0: float, width: int, height: int
) -> CameraModel:
    """``model`` cropped at (x0, y0), then scaled by (sx, sy) with the image edges kept on the edges.

    With pixel centres at integer coordinates, x' = (x - x0 + 0.5) * sx - 0.5.
    """
    k = model.K.copy()
    k[0, 0] *= sx
    k[1, 1] *= sy
    k[0, 2] = (k[0, 2] - x0 + 0.5) * sx - 0.5
    k[1, 2] = (k[1, 2] - y0 + 0.5) * sy - 0.5
    return CameraModel(
        K=k,
        D=model.D,
        width=width,
        height=height,
        frame_id=model.frame_id,
        distortion_model=model.distortion_model,
    )
