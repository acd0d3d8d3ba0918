"""fm-eval's runs: through both ROS nodes over DDS on a bag, or directly on the core (keyframe odometry,
or the continuous navigation), each giving one FrameRecord per frame."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from feature_matching_ros.core.errors import FeatureMatchingError
from feature_matching_ros.core.evaluation.scoring import FrameRecord

if TYPE_CHECKING:
    from feature_matching_ros.cli.evaluate import Progress
    from feature_matching_ros.core.maps.georef import GeoMap
    from feature_matching_ros.core.navigation.localizer import Localization


def run_ros(
    bag: Path,
    map_path: Path,
    matcher: str,
    limit: int | None,
    progress: Progress,
    terrain: dict | None = None,
) -> list[FrameRecord]:
    from feature_matching_ros.ros.bags.flight_bag import read_truth
    from feature_matching_ros.ros.bags.pipeline_run import run_on_bag

    truth = read_truth(bag)
    parameters = {
        "feature_matcher": {
            "reference_mode": "map",
            "map_image": str(map_path),
            "matcher": matcher,
            "publish_debug": False,
        },
        "geometry": {"mode": "map", "map_image": str(map_path), "publish_debug": False, **(terrain or {})},
    }
    outcomes = run_on_bag(
        bag, parameters, exclude=["ground_truth/pose"], on_frame=progress.frame, on_ready=progress.start
    )
    records = []
    t0 = outcomes[0].stamp_ns if outcomes else 0
    for outcome in outcomes[:limit]:
        true = truth.at(outcome.stamp_ns)
        position = None
        if outcome.pose is not None:
            p = outcome.pose.pose.pose.position
            position = np.array([p.x, p.y, p.z])
        geometry = outcome.geometry
        reason = (
            "no answer" if geometry is None else ("" if outcome.pose is not None else geometry.pose_status)
        )
        t = (outcome.stamp_ns - t0) / 1e9
        truth_xyz = true[0] if true is not None else None
        records.append(FrameRecord(t, truth_xyz, position, position is not None, reason, outcome.latency_ms))
    return records


def run_direct(
    bag: Path, map_path: Path, options: argparse.Namespace, progress: Progress
) -> list[FrameRecord]:
    """The core's continuous navigation (map fixes carried by odometry) over a bag's frames, with
    the bag's attitude and altitude as aids."""
    from feature_matching_ros.core.maps.georef import load_map
    from feature_matching_ros.ros.bags.flight_bag import read_flight

    frames = list(read_flight(bag, options.limit))
    if not frames:
        return []
    t0 = frames[0].stamp
    inputs = [
        (lambda f=f: f.image, f.stamp - t0, f.K, f.height, f.truth_position, f.R_map_body, f.D)
        for f in frames
    ]
    geomap = load_map(map_path, dem=options.dem, geoid_separation=options.geoid_separation)
    return run_navigation(inputs, geomap, options, progress)


def run_keyframe_ros(bag: Path, matcher: str, max_keypoints: int, progress: Progress) -> list[FrameRecord]:
    """Keyframe odometry through both nodes; a track ends at every frame that did not register."""
    from feature_matching_ros.ros.bags.flight_bag import read_truth
    from feature_matching_ros.ros.bags.pipeline_run import run_on_bag

    truth = read_truth(bag)
    parameters = {
        "feature_matcher": {"reference_mode": "keyframe", "matcher": matcher, "max_keypoints": max_keypoints},
        "geometry": {"mode": "odometry"},
    }
    # the first frame only becomes the keyframe and gets no answer
    outcomes = run_on_bag(
        bag,
        parameters,
        exclude=["ground_truth/pose"],
        on_frame=progress.frame,
        on_ready=progress.start,
        first_answered=False,
    )
    records, track = [], 0
    t0 = outcomes[0].stamp_ns if outcomes else 0
    for outcome in outcomes:
        true = truth.at(outcome.stamp_ns)
        estimate = None
        if outcome.odometry is not None:
            p = outcome.odometry.pose.pose.position
            estimate = np.array([p.x, p.y, p.z])
        else:
            track += 1  # the frontend takes this frame as a new keyframe: the next track starts here
        geometry = outcome.geometry
        reason = "no answer" if geometry is None else geometry.pose_status
        t = (outcome.stamp_ns - t0) / 1e9
        records.append(
            FrameRecord(
                t,
                None if true is None else true[0],
                estimate,
                estimate is not None,
                reason,
                outcome.latency_ms,
                track,
            )
        )
    return records


def run_keyframe_direct(
    frames: list, matcher: str, max_keypoints: int, progress: Progress
) -> list[FrameRecord]:
    """Keyframe odometry on the core; ``frames``: (image loader, t, K, height, truth xyz) tuples."""
    from feature_matching_ros.core.matching.registry import build
    from feature_matching_ros.core.odometry.keyframe_odometry import KeyframeOdometry

    odometry = KeyframeOdometry(build(matcher, {"max_keypoints": max_keypoints}))
    progress.start(len(frames))
    records = []
    for load, t, K, height, truth in frames:
        start = time.perf_counter()
        step = odometry.step(load(), t, K, height)
        latency = (time.perf_counter() - start) * 1e3
        estimate = step.position if step.registered else None  # a track's first frame has no pose
        records.append(FrameRecord(t, truth, estimate, step.registered, step.reason, latency, step.track))
        progress.frame(None)
    return records


def run_navigation(
    frames: list, geomap: GeoMap, options: argparse.Namespace, progress: Progress
) -> list[FrameRecord]:
    """The continuous navigation over ``frames``: (image path or loader, t, K, height or None, truth xyz
    [, R_map_body or None, distortion or None]) tuples."""
    from feature_matching_ros.core.image import load_image
    from feature_matching_ros.core.matching.registry import build
    from feature_matching_ros.core.navigation.config import NavigatorConfig
    from feature_matching_ros.core.navigation.navigator import Navigator

    if not 0.0 <= options.fix_height_sigma <= 1.0:
        raise FeatureMatchingError(f"--fix-height-sigma must be in [0, 1], got {options.fix_height_sigma:g}")
    if not options.whole_map_interval >= 0.0:  # NaN too
        raise FeatureMatchingError(f"--whole-map-interval must be >= 0 s, got {options.whole_map_interval:g}")
    if not options.whole_map_budget >= 0.0:
        raise FeatureMatchingError(f"--whole-map-budget must be >= 0 s, got {options.whole_map_budget:g}")
    config = NavigatorConfig(
        odometry=not options.no_odometry,
        map_sigma_m=options.map_sigma,
        fix_height_sigma=options.fix_height_sigma,
        whole_map_interval_s=options.whole_map_interval,
        whole_map_budget_s=options.whole_map_budget,
        background_search=options.background_search,
    )
    odometry = (
        None if options.no_odometry else build(options.matcher, {"max_keypoints": options.max_keypoints})
    )
    fallback = None if options.fallback_matcher in ("", "none") else build(options.fallback_matcher, {})
    navigator = Navigator(
        build(options.matcher, {}), geomap, config, odometry_pipeline=odometry, fallback_pipeline=fallback
    )
    progress.start(len(frames))
    records: list[FrameRecord] = []
    index: dict[float, int] = {}  # a frame's record by stamp, for a fix that comes in later
    replay = None  # with the search in the background, frames come as the camera took them
    try:
        for path, t, K, height, truth, *aids in frames:
            image = load_image(path) if isinstance(path, Path) else path()
            attitude, dist = (aids + [None, None])[:2]
            if options.background_search:
                replay = replay or (time.perf_counter() - t)
                time.sleep(max(0.0, replay + t - time.perf_counter()))
            start = time.perf_counter()
            state = navigator.step(image, K, t, dist=dist, R_map_body=attitude, height=height)
            latency = (time.perf_counter() - start) * 1e3  # the step: odometry, fusion (and search)
            records.append(
                FrameRecord(
                    t,
                    truth,
                    latency_ms=latency,
                    name=path.name if isinstance(path, Path) else f"{t:.3f}",
                    nav_source=state.source,
                    nav_position=state.position,
                    nav_covariance=state.covariance,
                    **_fix_fields(state.localization),
                )
            )
            index[t] = len(records) - 1
            _late_fix(records, index, state.late)
            progress.frame(None)
        _late_fix(records, index, navigator.finish())
    finally:
        navigator.close()
    return records


def _fix_fields(localization: Localization) -> dict:
    """A frame record's fields from the map fix of the frame (also a rejected fix's pose, not scored)."""
    fix = localization.fix
    accepted = bool(fix.accepted and fix.pose is not None)
    return {
        "estimate": None if fix.pose is None else fix.pose.position,
        "accepted": accepted,
        "reason": "" if accepted else fix.reason,
        "failed_check": "" if accepted else fix.failed,
        "matched_by": localization.match.strategy if len(localization.match) else "",
    }


def _late_fix(records: list[FrameRecord], index: dict[float, int], late: Localization | None) -> None:
    """A background search's outcome, into the record of the frame it searched."""
    if late is not None:
        k = index[late.fix.stamp]
        records[k] = dataclasses.replace(records[k], **_fix_fields(late))
