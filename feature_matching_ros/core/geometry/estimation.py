"""Robust geometry from point correspondences: homography, fundamental and essential matrices, PnP.

Every estimator takes pixel coordinates and returns a ``GeometryResult``. Problems with the
data (too few points, wrong shapes, NaN or inf, degenerate configurations, an estimator that
finds nothing or something non-finite, an OpenCV error) never raise: they come back as a
result with ``success=False`` and a ``reason`` saying what was wrong. Only configuration
mistakes (an unknown method or model name, out-of-range parameters) raise ``ConfigError``.

Conventions: ``H`` maps image 0 to image 1 (p1 ~ H p0); ``F`` and ``E`` satisfy
x1^T F x0 = 0; the relative pose (R, t) of the essential matrix maps camera-0 coordinates to
camera-1 coordinates (X1 = R X0 + t, |t| = 1); the PnP pose maps world to camera
(X_cam = R X_world + t). Camera matrices are [[fx, 0, cx], [0, fy, cy], [0, 0, 1]].
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import cv2
import numpy as np
import poselib

from feature_matching_ros.core.errors import ConfigError

DEFAULT_METHOD = "CV2_USAC_MAGSAC"

_CV2_FLAGS: Mapping[str, int] = MappingProxyType(
    {
        "CV2_USAC_MAGSAC": cv2.USAC_MAGSAC,
        "CV2_RANSAC": cv2.RANSAC,
        "CV2_USAC_DEFAULT": cv2.USAC_DEFAULT,
        "CV2_USAC_FM_8PTS": cv2.USAC_FM_8PTS,
        "CV2_USAC_PROSAC": cv2.USAC_PROSAC,
        "CV2_USAC_FAST": cv2.USAC_FAST,
        "CV2_USAC_ACCURATE": cv2.USAC_ACCURATE,
        "CV2_USAC_PARALLEL": cv2.USAC_PARALLEL,
    }
)
POSELIB = "POSELIB"

ROBUST_METHODS: tuple[str, ...] = (*_CV2_FLAGS, POSELIB)
"""Names of the robust estimators; ``POSELIB`` is LO-RANSAC from the poselib package."""

HOMOGRAPHY = "Homography"
FUNDAMENTAL = "Fundamental"
ESSENTIAL = "Essential"
PNP = "PnP"
MODEL_TYPES: tuple[str, ...] = (HOMOGRAPHY, FUNDAMENTAL, ESSENTIAL)
"""Two-view models ``estimate`` dispatches; PnP (3D-2D) has its own ``estimate_pnp``."""

MIN_MATCHES: Mapping[str, int] = MappingProxyType({HOMOGRAPHY: 4, FUNDAMENTAL: 8, ESSENTIAL: 5, PNP: 4})
"""Fewest correspondences each estimator accepts."""

MIN_INLIERS: Mapping[str, int] = MappingProxyType({HOMOGRAPHY: 5, FUNDAMENTAL: 8, ESSENTIAL: 6, PNP: 4})
"""Fewest inliers for a model to count: its minimal sample (4, 7, 5, 3) plus one.

A model supported only by its own minimal sample fits those points exactly whatever they are,
so it carries no evidence.
"""

_UNSUPPORTED: Mapping[tuple[str, str], str] = MappingProxyType(
    {
        # Measured with OpenCV 5.0.0 (the tests also pass on 4.14): both calls accept the flag but
        # return a wrong model.
        ("CV2_USAC_FM_8PTS", HOMOGRAPHY): "it is OpenCV's 8-point fundamental-matrix solver",
        ("CV2_USAC_FM_8PTS", PNP): "it is OpenCV's 8-point fundamental-matrix solver",
    }
)

_NOUNS: Mapping[str, str] = MappingProxyType(
    {HOMOGRAPHY: "homography", FUNDAMENTAL: "fundamental matrix", ESSENTIAL: "essential matrix", PNP: "PnP"}
)

# recoverPose drops points farther than this many baselines as "at infinity"; OpenCV's default of
# 50 would drop nearly everything a drone sees from altitude with a short baseline.
_CHIRALITY_DISTANCE = 1e9
# With a usable translation (nearly) all essential-matrix inliers lie in front of both cameras;
# when the baseline is too short for the depth and the noise, each point's side is a coin flip
# and so is the translation. Measured on synthetic near-planar scenes 10-500 baselines deep with
# 0-1 px noise: >= 0.85 in front whenever the direction was within 20 degrees of the truth, 0.41-0.76
# in the coin-flip regime. The check cannot see every wrong translation (see estimate_essential).
_MIN_FRONT_FRACTION = 0.8
# Points whose spread across their best-fit line is below this fraction of the spread along it
# are treated as collinear.
_COLLINEAR_RATIO = 1e-6


def method_supports(method: str, model_type: str) -> bool:
    """Whether ``method`` (one of ROBUST_METHODS) can estimate ``model_type`` (MODEL_TYPES or "PnP")."""
    return method in ROBUST_METHODS and model_type in _NOUNS and (method, model_type) not in _UNSUPPORTED


def _is_real(value: object) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


@dataclass(frozen=True)
class RobustParams:
    """Settings of the robust estimator.

    reproj_threshold: inlier threshold in pixels (one-way transfer error for homographies and
    PnP, Sampson distance for fundamental and essential matrices); confidence: in (0, 1);
    max_iter: iteration cap of the robust loop.
    """

    method: str = DEFAULT_METHOD
    reproj_threshold: float = 8.0
    confidence: float = 0.9999
    max_iter: int = 10000

    def __post_init__(self) -> None:
        if self.method not in ROBUST_METHODS:
            raise ConfigError(f"unknown robust method {self.method!r}; valid: {', '.join(ROBUST_METHODS)}")
        if not _is_real(self.reproj_threshold) or not self.reproj_threshold > 0:
            raise ConfigError(
                f"reproj_threshold must be a positive number of pixels, got {self.reproj_threshold!r}"
            )
        if not _is_real(self.confidence) or not 0 < self.confidence < 1:
            raise ConfigError(f"confidence must be strictly between 0 and 1, got {self.confidence!r}")
        if (
            isinstance(self.max_iter, bool)
            or not isinstance(self.max_iter, (int, np.integer))
            or self.max_iter < 1
        ):
            raise ConfigError(f"max_iter must be an integer >= 1, got {self.max_iter!r}")


@dataclass(frozen=True)
class GeometryResult:
    """Outcome of one robust estimation.

    model: 3x3 for Homography / Fundamental / Essential (H scaled so H[2, 2] = 1 where possible,
    F and E to unit Frobenius norm), 3x4 [R | t] for PnP, None on failure. inlier_mask: [N] bool
    with N the number of input correspondences (all False on failure). Residuals are in pixels
    over the inliers (NaN without a model). rotation (3x3) and translation (3,) are set for
    Essential (relative pose, unit translation) and PnP (world to camera), else None.

    ``success`` means the checks here passed and at least MIN_INLIERS points support the model;
    among few matches that much support can arise by chance, so judge ``num_inliers`` and
    ``inlier_ratio`` before trusting a model.
    """

    model_type: str
    method: str
    success: bool
    reason: str
    model: np.ndarray | None
    inlier_mask: np.ndarray
    num_matches: int
    num_inliers: int
    inlier_ratio: float
    residual_mean_px: float
    residual_median_px: float
    residual_max_px: float
    rotation: np.ndarray | None = None
    translation: np.ndarray | None = None

    @classmethod
    def failure(cls, model_type: str, method: str, reason: str, num_matches: int) -> GeometryResult:
        """A result without a model; ``reason`` says why, for the operator."""
        nan = float("nan")
        return cls(
            model_type,
            method,
            False,
            reason,
            None,
            np.zeros(num_matches, bool),
            num_matches,
            0,
            0.0,
            nan,
            nan,
            nan,
        )


def warp_points(H: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Points [N x 2] mapped by the 3x3 homography H, as [N x 2] float64.

    Points that H sends to infinity come back non-finite.
    """
    h = np.asarray(H, np.float64).reshape(3, 3)
    p = np.asarray(pts, np.float64).reshape(-1, 2)
    q = p @ h[:, :2].T + h[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        return q[:, :2] / q[:, 2:]


def corner_error(H_est: np.ndarray, H_true: np.ndarray, width: int, height: int) -> float:
    """Mean distance in pixels between the four image corners mapped by ``H_est`` and by ``H_true``.

    The corners are the centres of the corner pixels, (0, 0), (w-1, 0), (w-1, h-1), (0, h-1).
    Returns inf if either homography sends a corner to infinity.
    """
    w, h = width - 1.0, height - 1.0
    corners = np.array([[0.0, 0.0], [w, 0.0], [w, h], [0.0, h]])
    error = np.linalg.norm(warp_points(H_est, corners) - warp_points(H_true, corners), axis=1).mean()
    return float(error) if np.isfinite(error) else math.inf


def estimate_homography(
    pts0: np.ndarray, pts1: np.ndarray, params: RobustParams = RobustParams()
) -> GeometryResult:
    """Homography mapping pts0 [N x 2] (image 0) to pts1 [N x 2] (image 1), in pixels.

    Residual: one-way transfer error |H p0 - p1| in image 1.
    """
    return _run(HOMOGRAPHY, params, _rows(pts0), lambda: _homography(pts0, pts1, params))


def estimate_fundamental(
    pts0: np.ndarray, pts1: np.ndarray, params: RobustParams = RobustParams()
) -> GeometryResult:
    """Fundamental matrix F with x1^T F x0 = 0 from pts0, pts1 [N x 2] in pixels.

    Residual: Sampson distance in pixels. F is undetermined when the scene is a plane (e.g. flat
    ground seen from altitude); use a homography there.
    """
    return _run(FUNDAMENTAL, params, _rows(pts0), lambda: _fundamental(pts0, pts1, params))


def estimate_essential(
    pts0: np.ndarray,
    pts1: np.ndarray,
    K0: np.ndarray,
    K1: np.ndarray | None = None,
    params: RobustParams = RobustParams(),
) -> GeometryResult:
    """Essential matrix and relative pose from pts0, pts1 [N x 2] in pixels of cameras K0, K1 (3x3).

    K1 defaults to K0. The inliers are those of the essential matrix that also lie in front of
    both cameras under the recovered pose; if fewer than 80 % of them do, the translation is not
    determined by the data and the result is a failure. Residual: Sampson distance in pixels under
    F = K1^-T E K0^-1.

    A success does not prove the translation direction is accurate: when the parallax is small
    against the noise, or the scene is nearly planar (ground seen from altitude), the essential
    matrix is ambiguous and the translation can be far off while every inlier fits. Gate on
    parallax, or use a homography, in such scenes.
    """
    return _run(ESSENTIAL, params, _rows(pts0), lambda: _essential(pts0, pts1, K0, K1, params))


def estimate_pnp(
    points3d: np.ndarray,
    points2d: np.ndarray,
    K: np.ndarray,
    dist: np.ndarray | None = None,
    params: RobustParams = RobustParams(),
) -> GeometryResult:
    """Camera pose from world points [N x 3] and their pixels [N x 2] in camera K (3x3).

    dist: OpenCV distortion coefficients (4, 5, 8, 12 or 14 values) or None. The model is the
    3x4 [R | t] taking world to camera coordinates. Residual: reprojection error in pixels.
    """
    return _run(PNP, params, _rows(points3d), lambda: _pnp(points3d, points2d, K, dist, params))


def estimate(
    model_type: str,
    pts0: np.ndarray,
    pts1: np.ndarray,
    params: RobustParams = RobustParams(),
    K0: np.ndarray | None = None,
    K1: np.ndarray | None = None,
) -> GeometryResult:
    """Two-view estimation of ``model_type`` (one of MODEL_TYPES); K0 is required for "Essential".

    Raises ConfigError for an unknown model type or a missing K0, which are configuration
    mistakes; problems with the data come back as failed results.
    """
    if model_type == HOMOGRAPHY:
        return estimate_homography(pts0, pts1, params)
    if model_type == FUNDAMENTAL:
        return estimate_fundamental(pts0, pts1, params)
    if model_type == ESSENTIAL:
        if K0 is None:
            raise ConfigError("Essential estimation needs the camera matrix K0")
        return estimate_essential(pts0, pts1, K0, K1, params)
    hint = "; use estimate_pnp for PnP" if model_type == PNP else ""
    raise ConfigError(f"unknown model type {model_type!r}; valid: {', '.join(MODEL_TYPES)}{hint}")


class _Reject(Exception):
    """Internal: the data cannot give a model; the message is the failure reason."""


def _run(
    model_type: str, params: RobustParams, n: int, solve: Callable[[], GeometryResult]
) -> GeometryResult:
    if (params.method, model_type) in _UNSUPPORTED:
        reason = _UNSUPPORTED[params.method, model_type]
        return GeometryResult.failure(
            model_type, params.method, f"{params.method} does not estimate {model_type} ({reason})", n
        )
    try:
        return solve()
    except _Reject as e:
        return GeometryResult.failure(model_type, params.method, str(e), n)
    except cv2.error as e:
        message = (e.err or str(e)).strip()
        return GeometryResult.failure(model_type, params.method, f"OpenCV error: {message}", n)


def _homography(pts0: np.ndarray, pts1: np.ndarray, params: RobustParams) -> GeometryResult:
    p0, p1 = _point_pairs(HOMOGRAPHY, pts0, pts1, params)
    if params.method == POSELIB:
        opts = _poselib_options(params, "max_reproj_error", params.reproj_threshold)
        H, info = poselib.estimate_homography(p0, p1, opts, {})
        H, mask = _poselib_output(H, info, len(p0))
    else:
        H, mask = cv2.findHomography(
            p0,
            p1,
            _CV2_FLAGS[params.method],
            params.reproj_threshold,
            maxIters=params.max_iter,
            confidence=params.confidence,
        )
    H = _single_model(H)
    if abs(H[2, 2]) > 1e-12 * np.abs(H).max():
        H = H / H[2, 2]
    singular = np.linalg.svd(H, compute_uv=False)
    if not singular[2] > 1e-12 * singular[0]:
        raise _Reject("estimator returned a singular homography")
    return _result(
        HOMOGRAPHY, params, H, _mask(mask, len(p0)), np.linalg.norm(warp_points(H, p0) - p1, axis=1), (p0, p1)
    )


def _fundamental(pts0: np.ndarray, pts1: np.ndarray, params: RobustParams) -> GeometryResult:
    p0, p1 = _point_pairs(FUNDAMENTAL, pts0, pts1, params)
    if params.method == POSELIB:
        opts = _poselib_options(params, "max_epipolar_error", params.reproj_threshold)
        F, info = poselib.estimate_fundamental(p0, p1, opts, {})
        F, mask = _poselib_output(F, info, len(p0))
    else:
        F, mask = cv2.findFundamentalMat(
            p0, p1, _CV2_FLAGS[params.method], params.reproj_threshold, params.confidence, params.max_iter
        )
    F = _unit(_single_model(F))
    return _result(FUNDAMENTAL, params, F, _mask(mask, len(p0)), _sampson_px(F, p0, p1), (p0, p1))


def _essential(
    pts0: np.ndarray, pts1: np.ndarray, K0: np.ndarray, K1: np.ndarray | None, params: RobustParams
) -> GeometryResult:
    p0, p1 = _point_pairs(ESSENTIAL, pts0, pts1, params)
    k0 = _camera_matrix(K0, "K0")
    k1 = k0 if K1 is None else _camera_matrix(K1, "K1")
    if params.method == POSELIB:
        opts = _poselib_options(params, "max_epipolar_error", params.reproj_threshold)
        pose, info = poselib.estimate_relative_pose(
            p0, p1, _poselib_camera(k0), _poselib_camera(k1), opts, {}
        )
        _, mask = _poselib_output(np.eye(3), info, len(p0))
        R, t = np.asarray(pose.R, np.float64), np.asarray(pose.t, np.float64)
        if not (np.isfinite(R).all() and np.isfinite(t).all() and np.linalg.norm(t) > 0):
            raise _Reject("estimator returned a non-finite or zero-translation pose")
        t = t / np.linalg.norm(t)
        E = _unit(_skew(t) @ R)
    else:
        a, b, k, threshold = _essential_frame(p0, p1, k0, k1, params)
        E, mask = cv2.findEssentialMat(
            a, b, k, _CV2_FLAGS[params.method], params.confidence, threshold, params.max_iter
        )
        E = _unit(_single_model(E))
        mask = _mask(mask, len(p0))
        if mask.sum() < MIN_INLIERS[ESSENTIAL]:
            raise _Reject(_too_few_inliers(ESSENTIAL, int(mask.sum())))
        # distanceThresh must be a keyword: given positionally, OpenCV 5 picks another overload.
        _, R, t, _, _ = cv2.recoverPose(
            E, a, b, k, distanceThresh=_CHIRALITY_DISTANCE, mask=mask.astype(np.uint8).reshape(-1, 1)
        )
        R, t = np.asarray(R, np.float64), np.asarray(t, np.float64).reshape(3)
    mask = _mask(mask, len(p0))
    front = mask & _in_front(R, t, _normalise(p0, k0), _normalise(p1, k1))
    if front.sum() < _MIN_FRONT_FRACTION * mask.sum():
        raise _Reject(
            f"translation is not observable: only {int(front.sum())} of {int(mask.sum())} inliers lie in "
            "front of both cameras (baseline too short for the depth, or a degenerate scene?)"
        )
    F = np.linalg.inv(k1).T @ E @ np.linalg.inv(k0)
    result = _result(ESSENTIAL, params, E, front, _sampson_px(F, p0, p1), (p0, p1))
    return _with_pose(result, R, t)


def _pnp(
    points3d: np.ndarray, points2d: np.ndarray, K: np.ndarray, dist: np.ndarray | None, params: RobustParams
) -> GeometryResult:
    X = _points(points3d, "points3d", 3)
    x = _points(points2d, "points2d", 2)
    _check_pair(PNP, X, x, "points3d", "points2d")
    k = _camera_matrix(K, "K")
    d = _distortion(dist)
    _check_spread(X, "the 3D points", None)
    _check_spread(x, "the image points", params.reproj_threshold)
    if params.method == POSELIB:
        ideal = x if d is None else cv2.undistortPoints(x.reshape(-1, 1, 2), k, d, P=k).reshape(-1, 2)
        opts = _poselib_options(params, "max_reproj_error", params.reproj_threshold)
        pose, info = poselib.estimate_absolute_pose(ideal, X, _poselib_camera(k), opts, {})
        _, mask = _poselib_output(np.eye(3), info, len(X))
        R, t = np.asarray(pose.R, np.float64), np.asarray(pose.t, np.float64)
    else:
        # OpenCV 5 rejects RANSAC (8) as a PnP solver flag; its RANSAC loop runs with SOLVEPNP_ITERATIVE.
        flag = cv2.SOLVEPNP_ITERATIVE if params.method == "CV2_RANSAC" else _CV2_FLAGS[params.method]
        found, rvec, tvec, indices = cv2.solvePnPRansac(
            X,
            x,
            k,
            d,
            iterationsCount=params.max_iter,
            reprojectionError=params.reproj_threshold,
            confidence=params.confidence,
            flags=flag,
        )
        if not found or rvec is None or tvec is None:
            raise _Reject("estimator found no pose (degenerate configuration?)")
        mask = np.zeros(len(X), bool)
        if indices is not None:
            mask[np.asarray(indices, np.int64).reshape(-1)] = True
        R, t = cv2.Rodrigues(np.asarray(rvec, np.float64))[0], np.asarray(tvec, np.float64)
    R, t = R.reshape(3, 3), t.reshape(3)
    if not (np.isfinite(R).all() and np.isfinite(t).all()):
        raise _Reject("estimator returned a non-finite pose")
    depth = X[mask] @ R[2] + t[2]
    if (depth <= 0).any():
        raise _Reject(f"{int((depth <= 0).sum())} inliers lie behind the camera under the estimated pose")
    projected = cv2.projectPoints(X, cv2.Rodrigues(R)[0], t, k, d)[0].reshape(-1, 2)
    result = _result(
        PNP,
        params,
        np.hstack([R, t[:, None]]),
        mask,
        np.linalg.norm(projected - x, axis=1),
        (X, x),
        ("the 3D points", "the image points"),
    )
    return _with_pose(result, R, t)


def _result(
    model_type: str,
    params: RobustParams,
    model: np.ndarray,
    mask: np.ndarray,
    residuals: np.ndarray,
    point_sets: tuple[np.ndarray, np.ndarray],
    names: tuple[str, str] = ("image 0", "image 1"),
) -> GeometryResult:
    n = len(mask)
    count = int(mask.sum())
    if count < MIN_INLIERS[model_type]:
        raise _Reject(_too_few_inliers(model_type, count))
    for points, name in zip(point_sets, names, strict=True):
        pixels = points.shape[1] == 2
        _check_spread(points[mask], f"the inliers of {name}", params.reproj_threshold if pixels else None)
    inlier_residuals = residuals[mask]
    bad = int((~np.isfinite(inlier_residuals)).sum())
    if bad:
        raise _Reject(f"{bad} inliers have non-finite residuals under the model (mapped to infinity?)")
    return GeometryResult(
        model_type=model_type,
        method=params.method,
        success=True,
        reason="",
        model=model,
        inlier_mask=mask,
        num_matches=n,
        num_inliers=count,
        inlier_ratio=count / n,
        residual_mean_px=float(inlier_residuals.mean()),
        residual_median_px=float(np.median(inlier_residuals)),
        residual_max_px=float(inlier_residuals.max()),
    )


def _with_pose(result: GeometryResult, R: np.ndarray, t: np.ndarray) -> GeometryResult:
    return GeometryResult(**{**result.__dict__, "rotation": R.reshape(3, 3), "translation": t.reshape(3)})


def _too_few_inliers(model_type: str, count: int) -> str:
    return (
        f"{_NOUNS[model_type]} has only {count} inliers, needs at least {MIN_INLIERS[model_type]} "
        "to be supported beyond its minimal sample"
    )


def _rows(points: object) -> int:
    """N of an input, for the length of a failure's inlier mask; 0 if it has no rows."""
    shape = getattr(points, "shape", None)
    if shape is None:
        try:
            shape = np.shape(points)
        except (TypeError, ValueError):
            return 0
    return int(shape[0]) if len(shape) >= 1 else 0


def _points(points: object, name: str, dims: int) -> np.ndarray:
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError):
        raise _Reject(f"{name} is not a numeric array") from None
    if array.ndim != 2 or array.shape[1] != dims:
        raise _Reject(f"{name} must be an [N x {dims}] array, got shape {array.shape}")
    return np.ascontiguousarray(array)


def _check_pair(model_type: str, a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if len(a) != len(b):
        raise _Reject(f"{name_a} has {len(a)} points but {name_b} has {len(b)}")
    if len(a) < MIN_MATCHES[model_type]:
        raise _Reject(f"{_NOUNS[model_type]} needs at least {MIN_MATCHES[model_type]} matches, got {len(a)}")
    bad = int((~np.isfinite(a)).sum() + (~np.isfinite(b)).sum())
    if bad:
        raise _Reject(f"points contain {bad} non-finite values")


def _point_pairs(
    model_type: str, pts0: object, pts1: object, params: RobustParams
) -> tuple[np.ndarray, np.ndarray]:
    p0 = _points(pts0, "pts0", 2)
    p1 = _points(pts1, "pts1", 2)
    _check_pair(model_type, p0, p1, "pts0", "pts1")
    _check_spread(p0, "the points of image 0", params.reproj_threshold)
    _check_spread(p1, "the points of image 1", params.reproj_threshold)
    return p0, p1


def _check_spread(points: np.ndarray, what: str, threshold_px: float | None) -> None:
    """Reject points that are identical or collinear, exactly or (for pixels) within the inlier threshold.

    Points closer together, or closer to a line, than the inlier threshold fit a whole family of
    models equally well, so no model they support is determined.
    """
    if len(points) == 0:
        return
    # RMS extent of the points along their principal axes.
    extent = np.linalg.svd(points - points.mean(axis=0), compute_uv=False) / math.sqrt(len(points))
    if extent[0] <= 1e-9 * max(1.0, float(np.abs(points).max())):
        raise _Reject(f"all {len(points)} of {what} are identical")
    if threshold_px is not None and extent[0] < threshold_px:
        raise _Reject(
            f"{what} spread only {extent[0]:.3g} px (RMS), "
            f"less than the inlier threshold of {threshold_px:g} px"
        )
    if len(extent) < 2 or extent[1] <= _COLLINEAR_RATIO * extent[0]:
        raise _Reject(f"{what} are collinear (degenerate configuration)")
    if threshold_px is not None and extent[1] < threshold_px:
        raise _Reject(
            f"{what} are nearly collinear: {extent[1]:.3g} px (RMS) off a line, less than the inlier "
            f"threshold of {threshold_px:g} px"
        )


def _camera_matrix(K: object, name: str) -> np.ndarray:
    try:
        k = np.asarray(K, dtype=np.float64)
    except (TypeError, ValueError):
        raise _Reject(f"{name} is not a numeric array") from None
    if k.shape != (3, 3):
        raise _Reject(f"{name} must be 3x3, got shape {k.shape}")
    if not np.isfinite(k).all():
        raise _Reject(f"{name} contains non-finite values")
    if not (k[0, 0] > 0 and k[1, 1] > 0):
        raise _Reject(f"{name} focal lengths must be positive, got fx={k[0, 0]:g}, fy={k[1, 1]:g}")
    if k[0, 1] != 0 or k[1, 0] != 0 or not np.allclose(k[2], (0.0, 0.0, 1.0)):
        raise _Reject(f"{name} must have the form [[fx, 0, cx], [0, fy, cy], [0, 0, 1]], got {k.tolist()}")
    return k


def _distortion(dist: object) -> np.ndarray | None:
    if dist is None:
        return None
    try:
        d = np.asarray(dist, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise _Reject("dist is not a numeric array") from None
    if d.size not in (4, 5, 8, 12, 14):
        raise _Reject(f"dist must have 4, 5, 8, 12 or 14 coefficients, got {d.size}")
    if not np.isfinite(d).all():
        raise _Reject("dist contains non-finite values")
    return d


def _essential_frame(
    p0: np.ndarray, p1: np.ndarray, k0: np.ndarray, k1: np.ndarray, params: RobustParams
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Points of both images, one camera matrix and the threshold, as OpenCV's essential solvers need them.

    OpenCV takes a single camera matrix. Measured with OpenCV 5.0: USAC_FM_8PTS ignores it and
    only gives an essential matrix on normalised coordinates, while USAC_MAGSAC on normalised
    coordinates goes wrong above ~1 px thresholds (translation directions tens of degrees off).
    So FM_8PTS gets normalised coordinates and the others pixels, image 1 re-imaged through K0.
    """
    if params.method == "CV2_USAC_FM_8PTS":
        focal = (k0[0, 0] + k0[1, 1] + k1[0, 0] + k1[1, 1]) / 4.0
        return _normalise(p0, k0), _normalise(p1, k1), np.eye(3), params.reproj_threshold / focal
    return p0, _reimage(p1, k1, k0), k0, params.reproj_threshold


def _normalise(points: np.ndarray, k: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray((points - k[:2, 2]) / (k[0, 0], k[1, 1]))


def _reimage(points: np.ndarray, k_from: np.ndarray, k_to: np.ndarray) -> np.ndarray:
    """Pixels [N x 2] of camera ``k_from`` as seen by camera ``k_to`` from the same centre and pose."""
    if np.array_equal(k_from, k_to):
        return points
    return np.ascontiguousarray(_normalise(points, k_from) * (k_to[0, 0], k_to[1, 1]) + k_to[:2, 2])


def _single_model(model: np.ndarray | None) -> np.ndarray:
    if model is None or np.size(model) == 0:
        raise _Reject("estimator found no model (degenerate configuration?)")
    model = np.asarray(model, np.float64)
    if model.shape != (3, 3):
        raise _Reject(f"estimator returned {model.shape[0] // 3} candidate models instead of one")
    if not np.isfinite(model).all():
        raise _Reject("estimator returned a non-finite model")
    if not np.abs(model).max() > 0:
        raise _Reject("estimator returned an all-zero model")
    return model


def _unit(model: np.ndarray) -> np.ndarray:
    return model / np.linalg.norm(model)


def _mask(mask: np.ndarray | None, n: int) -> np.ndarray:
    if mask is None:
        raise _Reject("estimator returned no inlier mask")
    flat = np.asarray(mask).reshape(-1)
    if flat.size != n:
        raise _Reject(f"estimator returned an inlier mask of {flat.size} entries for {n} matches")
    return flat != 0


def _sampson_px(F: np.ndarray, p0: np.ndarray, p1: np.ndarray) -> np.ndarray:
    """Sampson distance [N] in pixels of each pair (p0, p1) to the epipolar geometry F."""
    x0 = np.hstack([p0, np.ones((len(p0), 1))])
    x1 = np.hstack([p1, np.ones((len(p1), 1))])
    Fx0 = x0 @ F.T
    Ftx1 = x1 @ F
    algebraic = np.sum(x1 * Fx0, axis=1)
    gradient = np.sqrt(Fx0[:, 0] ** 2 + Fx0[:, 1] ** 2 + Ftx1[:, 0] ** 2 + Ftx1[:, 1] ** 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.abs(algebraic) / gradient


def _in_front(R: np.ndarray, t: np.ndarray, n0: np.ndarray, n1: np.ndarray) -> np.ndarray:
    """[N] bool: the point triangulated from normalised n0, n1 [N x 2] has positive depth in both cameras.

    Depths d0, d1 solve d1 f1 = d0 R f0 + t in the least-squares sense for the rays f = (n, 1).
    """
    f0 = np.hstack([n0, np.ones((len(n0), 1))]) @ R.T
    f1 = np.hstack([n1, np.ones((len(n1), 1))])
    aa, ab, bb = np.sum(f0 * f0, axis=1), np.sum(f0 * f1, axis=1), np.sum(f1 * f1, axis=1)
    at, bt = f0 @ t, f1 @ t
    det = aa * bb - ab * ab
    # Cramer's rule on the normal equations; det >= 0, and det = 0 means parallel rays (no depth).
    d0 = ab * bt - bb * at
    d1 = aa * bt - ab * at
    return (det > 0) & (d0 > 0) & (d1 > 0)


def _skew(v: np.ndarray) -> np.ndarray:
    return np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])


def _poselib_options(params: RobustParams, threshold_key: str, threshold: float) -> dict[str, float | int]:
    return {
        threshold_key: float(threshold),
        "success_prob": float(params.confidence),
        "max_iterations": int(params.max_iter),
        "min_iterations": min(int(params.max_iter), 1000),
    }


def _poselib_camera(k: np.ndarray) -> dict[str, object]:
    return {"model": "PINHOLE", "width": 0, "height": 0, "params": [k[0, 0], k[1, 1], k[0, 2], k[1, 2]]}


def _poselib_output(model: np.ndarray, info: dict, n: int) -> tuple[np.ndarray, np.ndarray]:
    # poselib leaves the model uninitialised when it finds nothing, so the inlier count decides.
    if int(info.get("num_inliers", 0)) == 0:
        raise _Reject("estimator found no model (degenerate configuration?)")
    return np.asarray(model, np.float64), _mask(np.asarray(info["inliers"], bool), n)
