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

from collections.abc import Callable

import cv2
import numpy as np
import poselib

from feature_matching_ros.core.errors import ConfigError

from .epipolar import essential_frame, in_front, normalise, sampson_px, skew
from .result import GeometryResult, warp_points
from .robust import (
    CV2_FLAGS,
    ESSENTIAL,
    FUNDAMENTAL,
    HOMOGRAPHY,
    MIN_INLIERS,
    MODEL_TYPES,
    NOUNS,
    PNP,
    POSELIB,
    UNSUPPORTED,
    RobustParams,
)
from .validation import (
    Reject,
    camera_matrix,
    check_pair,
    check_spread,
    distortion,
    point_array,
    point_pairs,
    rows,
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

_DEFAULT_PARAMS = RobustParams()


def estimate_homography(
    pts0: np.ndarray, pts1: np.ndarray, params: RobustParams = _DEFAULT_PARAMS
) -> GeometryResult:
    """Homography mapping pts0 [N x 2] (image 0) to pts1 [N x 2] (image 1), in pixels.

    Residual: one-way transfer error |H p0 - p1| in image 1.
    """
    return _run(HOMOGRAPHY, params, rows(pts0), lambda: _homography(pts0, pts1, params))


def estimate_fundamental(
    pts0: np.ndarray, pts1: np.ndarray, params: RobustParams = _DEFAULT_PARAMS
) -> GeometryResult:
    """Fundamental matrix F with x1^T F x0 = 0 from pts0, pts1 [N x 2] in pixels.

    Residual: Sampson distance in pixels. F is undetermined when the scene is a plane (e.g. flat
    ground seen from altitude); use a homography there.
    """
    return _run(FUNDAMENTAL, params, rows(pts0), lambda: _fundamental(pts0, pts1, params))


def estimate_essential(
    pts0: np.ndarray,
    pts1: np.ndarray,
    K0: np.ndarray,
    K1: np.ndarray | None = None,
    params: RobustParams = _DEFAULT_PARAMS,
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
    return _run(ESSENTIAL, params, rows(pts0), lambda: _essential(pts0, pts1, K0, K1, params))


def estimate_pnp(
    points3d: np.ndarray,
    points2d: np.ndarray,
    K: np.ndarray,
    dist: np.ndarray | None = None,
    params: RobustParams = _DEFAULT_PARAMS,
) -> GeometryResult:
    """Camera pose from world points [N x 3] and their pixels [N x 2] in camera K (3x3).

    dist: OpenCV distortion coefficients (4, 5, 8, 12 or 14 values) or None. The model is the
    3x4 [R | t] taking world to camera coordinates. Residual: reprojection error in pixels.
    """
    return _run(PNP, params, rows(points3d), lambda: _pnp(points3d, points2d, K, dist, params))


def estimate(
    model_type: str,
    pts0: np.ndarray,
    pts1: np.ndarray,
    params: RobustParams = _DEFAULT_PARAMS,
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


def _run(
    model_type: str, params: RobustParams, n: int, solve: Callable[[], GeometryResult]
) -> GeometryResult:
    if (params.method, model_type) in UNSUPPORTED:
        reason = UNSUPPORTED[params.method, model_type]
        return GeometryResult.failure(
            model_type, params.method, f"{params.method} does not estimate {model_type} ({reason})", n
        )
    try:
        return solve()
    except Reject as e:
        return GeometryResult.failure(model_type, params.method, str(e), n)
    except cv2.error as e:
        message = (e.err or str(e)).strip()
        return GeometryResult.failure(model_type, params.method, f"OpenCV error: {message}", n)


def _homography(pts0: np.ndarray, pts1: np.ndarray, params: RobustParams) -> GeometryResult:
    p0, p1 = point_pairs(HOMOGRAPHY, pts0, pts1, params)
    if params.method == POSELIB:
        opts = _poselib_options(params, "max_reproj_error", params.reproj_threshold)
        H, info = poselib.estimate_homography(p0, p1, opts, {})
        H, mask = _poselib_output(H, info, len(p0))
    else:
        H, mask = cv2.findHomography(
            p0,
            p1,
            CV2_FLAGS[params.method],
            params.reproj_threshold,
            maxIters=params.max_iter,
            confidence=params.confidence,
        )
    H = _single_model(H)
    if abs(H[2, 2]) > 1e-12 * np.abs(H).max():
        H = H / H[2, 2]
    singular = np.linalg.svd(H, compute_uv=False)
    if not singular[2] > 1e-12 * singular[0]:
        raise Reject("estimator returned a singular homography")
    return _result(
        HOMOGRAPHY, params, H, _mask(mask, len(p0)), np.linalg.norm(warp_points(H, p0) - p1, axis=1), (p0, p1)
    )


def _fundamental(pts0: np.ndarray, pts1: np.ndarray, params: RobustParams) -> GeometryResult:
    p0, p1 = point_pairs(FUNDAMENTAL, pts0, pts1, params)
    if params.method == POSELIB:
        opts = _poselib_options(params, "max_epipolar_error", params.reproj_threshold)
        F, info = poselib.estimate_fundamental(p0, p1, opts, {})
        F, mask = _poselib_output(F, info, len(p0))
    else:
        F, mask = cv2.findFundamentalMat(
            p0, p1, CV2_FLAGS[params.method], params.reproj_threshold, params.confidence, params.max_iter
        )
    F = _unit(_single_model(F))
    return _result(FUNDAMENTAL, params, F, _mask(mask, len(p0)), sampson_px(F, p0, p1), (p0, p1))


def _essential(
    pts0: np.ndarray, pts1: np.ndarray, K0: np.ndarray, K1: np.ndarray | None, params: RobustParams
) -> GeometryResult:
    p0, p1 = point_pairs(ESSENTIAL, pts0, pts1, params)
    k0 = camera_matrix(K0, "K0")
    k1 = k0 if K1 is None else camera_matrix(K1, "K1")
    if params.method == POSELIB:
        opts = _poselib_options(params, "max_epipolar_error", params.reproj_threshold)
        pose, info = poselib.estimate_relative_pose(
            p0, p1, _poselib_camera(k0), _poselib_camera(k1), opts, {}
        )
        _, mask = _poselib_output(np.eye(3), info, len(p0))
        R, t = np.asarray(pose.R, np.float64), np.asarray(pose.t, np.float64)
        if not (np.isfinite(R).all() and np.isfinite(t).all() and np.linalg.norm(t) > 0):
            raise Reject("estimator returned a non-finite or zero-translation pose")
        t = t / np.linalg.norm(t)
        E = _unit(skew(t) @ R)
    else:
        a, b, k, threshold = essential_frame(p0, p1, k0, k1, params)
        E, mask = cv2.findEssentialMat(
            a, b, k, CV2_FLAGS[params.method], params.confidence, threshold, params.max_iter
        )
        E = _unit(_single_model(E))
        mask = _mask(mask, len(p0))
        if mask.sum() < MIN_INLIERS[ESSENTIAL]:
            raise Reject(_too_few_inliers(ESSENTIAL, int(mask.sum())))
        # distanceThresh must be a keyword: given positionally, OpenCV 5 picks another overload.
        _, R, t, _, _ = cv2.recoverPose(
            E, a, b, k, distanceThresh=_CHIRALITY_DISTANCE, mask=mask.astype(np.uint8).reshape(-1, 1)
        )
        R, t = np.asarray(R, np.float64), np.asarray(t, np.float64).reshape(3)
    mask = _mask(mask, len(p0))
    front = mask & in_front(R, t, normalise(p0, k0), normalise(p1, k1))
    if front.sum() < _MIN_FRONT_FRACTION * mask.sum():
        raise Reject(
            f"translation is not observable: only {int(front.sum())} of {int(mask.sum())} inliers lie in "
            "front of both cameras (baseline too short for the depth, or a degenerate scene?)"
        )
    F = np.linalg.inv(k1).T @ E @ np.linalg.inv(k0)
    result = _result(ESSENTIAL, params, E, front, sampson_px(F, p0, p1), (p0, p1))
    return _with_pose(result, R, t)


def _pnp(
    points3d: np.ndarray, points2d: np.ndarray, K: np.ndarray, dist: np.ndarray | None, params: RobustParams
) -> GeometryResult:
    X = point_array(points3d, "points3d", 3)
    x = point_array(points2d, "points2d", 2)
    check_pair(PNP, X, x, "points3d", "points2d")
    k = camera_matrix(K, "K")
    d = distortion(dist)
    check_spread(X, "the 3D points", None)
    check_spread(x, "the image points", params.reproj_threshold)
    if params.method == POSELIB:
        ideal = x if d is None else cv2.undistortPoints(x.reshape(-1, 1, 2), k, d, P=k).reshape(-1, 2)
        opts = _poselib_options(params, "max_reproj_error", params.reproj_threshold)
        pose, info = poselib.estimate_absolute_pose(ideal, X, _poselib_camera(k), opts, {})
        _, mask = _poselib_output(np.eye(3), info, len(X))
        R, t = np.asarray(pose.R, np.float64), np.asarray(pose.t, np.float64)
    else:
        # OpenCV 5 rejects RANSAC (8) as a PnP solver flag; its RANSAC loop runs with SOLVEPNP_ITERATIVE.
        flag = cv2.SOLVEPNP_ITERATIVE if params.method == "CV2_RANSAC" else CV2_FLAGS[params.method]
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
            raise Reject("estimator found no pose (degenerate configuration?)")
        mask = np.zeros(len(X), bool)
        if indices is not None:
            mask[np.asarray(indices, np.int64).reshape(-1)] = True
        R, t = cv2.Rodrigues(np.asarray(rvec, np.float64))[0], np.asarray(tvec, np.float64)
    R, t = R.reshape(3, 3), t.reshape(3)
    if not (np.isfinite(R).all() and np.isfinite(t).all()):
        raise Reject("estimator returned a non-finite pose")
    depth = X[mask] @ R[2] + t[2]
    if (depth <= 0).any():
        raise Reject(f"{int((depth <= 0).sum())} inliers lie behind the camera under the estimated pose")
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
        raise Reject(_too_few_inliers(model_type, count))
    for points, name in zip(point_sets, names, strict=True):
        pixels = points.shape[1] == 2
        check_spread(points[mask], f"the inliers of {name}", params.reproj_threshold if pixels else None)
    inlier_residuals = residuals[mask]
    bad = int((~np.isfinite(inlier_residuals)).sum())
    if bad:
        raise Reject(f"{bad} inliers have non-finite residuals under the model (mapped to infinity?)")
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
        f"{NOUNS[model_type]} has only {count} inliers, needs at least {MIN_INLIERS[model_type]} "
        "to be supported beyond its minimal sample"
    )


def _single_model(model: np.ndarray | None) -> np.ndarray:
    if model is None or np.size(model) == 0:
        raise Reject("estimator found no model (degenerate configuration?)")
    model = np.asarray(model, np.float64)
    if model.shape != (3, 3):
        raise Reject(f"estimator returned {model.shape[0] // 3} candidate models instead of one")
    if not np.isfinite(model).all():
        raise Reject("estimator returned a non-finite model")
    if not np.abs(model).max() > 0:
        raise Reject("estimator returned an all-zero model")
    return model


def _unit(model: np.ndarray) -> np.ndarray:
    return model / np.linalg.norm(model)


def _mask(mask: np.ndarray | None, n: int) -> np.ndarray:
    if mask is None:
        raise Reject("estimator returned no inlier mask")
    flat = np.asarray(mask).reshape(-1)
    if flat.size != n:
        raise Reject(f"estimator returned an inlier mask of {flat.size} entries for {n} matches")
    return flat != 0


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
        raise Reject("estimator found no model (degenerate configuration?)")
    return np.asarray(model, np.float64), _mask(np.asarray(info["inliers"], bool), n)
