"""The robust-method table, the fewest matches per model and the validation of ``RobustParams``."""

from __future__ import annotations

import math

import pytest

from feature_matching_ros.core.errors import ConfigError
from feature_matching_ros.core.geometry import (
    MIN_MATCHES,
    MODEL_TYPES,
    ROBUST_METHODS,
    RobustParams,
    method_supports,
)


def test_minimum_match_counts() -> None:
    assert dict(MIN_MATCHES) == {"Homography": 4, "Fundamental": 8, "Essential": 5, "PnP": 4}


def test_method_support_table() -> None:
    unsupported = {(m, t) for m in ROBUST_METHODS for t in (*MODEL_TYPES, "PnP") if not method_supports(m, t)}
    assert unsupported == {("CV2_USAC_FM_8PTS", "Homography"), ("CV2_USAC_FM_8PTS", "PnP")}
    assert not method_supports("NOPE", "Homography")
    assert not method_supports("POSELIB", "Affine")


def test_robust_methods() -> None:
    assert ROBUST_METHODS[0] == RobustParams().method == "CV2_USAC_MAGSAC"
    assert set(ROBUST_METHODS) == {
        "CV2_USAC_MAGSAC", "CV2_RANSAC", "CV2_USAC_DEFAULT", "CV2_USAC_FM_8PTS", "CV2_USAC_PROSAC",
        "CV2_USAC_FAST", "CV2_USAC_ACCURATE", "CV2_USAC_PARALLEL", "POSELIB",
    }  # fmt: skip


def test_robust_params_defaults() -> None:
    params = RobustParams()
    assert (params.method, params.reproj_threshold, params.confidence, params.max_iter) == (
        "CV2_USAC_MAGSAC",
        8.0,
        0.9999,
        10000,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"method": "MAGSAC"},
            r"unknown robust method 'MAGSAC'; valid: CV2_USAC_MAGSAC, CV2_RANSAC, .*POSELIB",
        ),
        ({"reproj_threshold": 0.0}, "reproj_threshold must be a positive number of pixels, got 0.0"),
        ({"reproj_threshold": -1.0}, "reproj_threshold must be a positive"),
        ({"reproj_threshold": math.nan}, "reproj_threshold must be a positive"),
        ({"reproj_threshold": math.inf}, "reproj_threshold must be a positive"),
        ({"reproj_threshold": "8"}, "reproj_threshold must be a positive"),
        ({"confidence": 0.0}, r"confidence must be strictly between 0 and 1, got 0.0"),
        ({"confidence": 1.0}, "confidence must be strictly between 0 and 1"),
        ({"confidence": 1.5}, "confidence must be strictly between 0 and 1"),
        ({"max_iter": 0}, "max_iter must be an integer >= 1, got 0"),
        ({"max_iter": 10.5}, "max_iter must be an integer >= 1"),
        ({"max_iter": True}, "max_iter must be an integer >= 1"),
    ],
)
def test_robust_params_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RobustParams(**kwargs)
