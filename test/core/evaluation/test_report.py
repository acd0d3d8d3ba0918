import csv
import json
import math

import cv2
import numpy as np
import pytest

from feature_matching_ros.core.evaluation import trajectory_metrics as tm
from feature_matching_ros.core.evaluation.plots import map_raster
from feature_matching_ros.core.evaluation.report import progress, report_dict, write_report
from feature_matching_ros.core.evaluation.scoring import FrameRecord, Run
from feature_matching_ros.core.maps.georef import GeoMap, GeoReference

# Matplotlib's default colours, as BGR (what cv2.imread gives).
BLUE, RED, GREEN = (180, 119, 31), (40, 39, 214), (44, 160, 44)
OFFSETS = {0: 1.0, 1: 2.0, 2: 2.5, 4: 3.0, 5: 20.0, 7: 1.5, 9: 4.0, 11: 0.5}  # accepted: metres north


def map_run() -> Run:
    frames = []
    for i in range(12):
        truth = [i * 30.0, 10.0 + i * 5.0, 150.0]
        if i in OFFSETS:
            estimate, accepted, reason = [truth[0], truth[1] + OFFSETS[i], 140.0], True, ""
        else:
            estimate, accepted, reason = None, False, f"too few inliers: {i} < 30"
        if i == 10:
            reason = "pose residual 9.1 px > 4.0 px | bad"
        frames.append(
            FrameRecord(100.0 + 5.0 * i, truth, estimate, accepted, reason, 80.0 + i, 0, f"IMG_{i}")
        )
    return Run("map", "sift+lightglue", frames, {"flight": "hand-built", "map": "none"})


def keyframe_run() -> tuple[Run, np.ndarray, np.ndarray, list[int]]:
    rng = np.random.default_rng(7)
    steps = np.array([[30.0, 0.0]] * 19)
    steps[6] = [100.0, 0.0]  # a disjoint pair (6, 7)
    steps[12] = [0.0, 60.0]  # an ambiguous pair (12, 13)
    truth = np.vstack([[0.0, 0.0], np.cumsum(steps, axis=0)]) + rng.normal(0.0, 3.0, (20, 2))
    estimate = 0.8 * truth[:, ::-1] + rng.normal(0.0, 1.0, (20, 2)) + 50.0
    ids = [0] * 7 + [1] * 10 + [2] * 3
    accepted = [i not in (7, 14) for i in range(20)]
    frames = [
        FrameRecord(float(i), truth[i], estimate[i], accepted[i], "" if accepted[i] else "lost", 30.0, ids[i])
        for i in range(20)
    ]
    return Run("keyframe", "orb", frames), truth, estimate, ids


def assert_real_image(path, colours=()):
    image = cv2.imread(str(path))
    assert image is not None, f"{path} is not a readable image"
    assert image.shape[0] >= 300 and image.shape[1] >= 300
    assert image.std() > 20.0
    assert len(np.unique(image.reshape(-1, 3), axis=0)) > 50
    for colour in colours:
        near = np.abs(image.astype(int) - colour).sum(axis=2) < 30
        assert near.sum() > 20, f"{path}: colour {colour} is missing"
    return image


def test_map_report_writes_every_file(tmp_path):
    report = write_report(map_run(), tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == ["errors.png", "frames.csv", "report.json", "report.md", "trajectory.png"]
    assert [p.name for p in report.plots] == ["trajectory.png", "errors.png"]
    assert_real_image(report.plots[0], (BLUE, RED))
    assert_real_image(report.plots[1], (BLUE, RED, GREEN))


def test_map_report_json_round_trips_unrounded_numbers(tmp_path):
    report = write_report(map_run(), tmp_path)
    data = json.loads(report.json_path.read_text())
    assert data == json.loads(json.dumps(report_dict(report.evaluation)))
    errors = np.array(list(OFFSETS.values()))
    assert data["mode"] == "map" and data["matcher"] == "sift+lightglue"
    assert data["metadata"] == {"flight": "hand-built", "map": "none"}
    assert data["settings"]["wrong_fix_bound_m"] == 15.0
    assert data["map"]["accepted"] == 8 and data["map"]["frames"] == 12
    assert data["map"]["success_rate"] == 8 / 12
    assert data["map"]["wrong_fixes"] == 1
    assert data["map"]["errors"]["median"] == np.median(errors)
    assert data["map"]["errors"]["p95"] == pytest.approx(np.percentile(errors, 95), rel=1e-15)
    assert data["map"]["errors"]["rmse"] == pytest.approx(math.sqrt(np.mean(errors**2)), rel=1e-15)
    assert data["map"]["rejected"] == {"too few inliers: # < #": 3, "pose residual # px > # px | bad": 1}
    assert data["latency"]["median_ms"] == 85.5
    frame3, frame5 = data["frames"][3], data["frames"][5]
    assert frame3["estimate"] is None and frame3["error_m"] is None and frame3["accepted"] is False
    assert frame3["reason"] == "too few inliers: 3 < 30"
    assert frame5["truth"] == [150.0, 35.0, 150.0] and frame5["estimate"] == [150.0, 55.0, 140.0]
    assert frame5["error_m"] == 20.0 and frame5["name"] == "IMG_5" and frame5["t"] == 125.0


def test_map_report_markdown_holds_the_numbers(tmp_path):
    report = write_report(map_run(), tmp_path)
    text = report.markdown_path.read_text()
    errors = np.array(list(OFFSETS.values()))
    latency_p95 = np.percentile(80.0 + np.arange(12), 95)
    assert report.summary in text
    for line in (
        "| frames | 12 |",
        "| accepted | 8 (66.7 %) |",
        f"| horizontal error median / p95 / max (m) | 2.25 / {np.percentile(errors, 95):.2f} / 20.00 |",
        f"| horizontal RMSE (m) | {math.sqrt(np.mean(errors**2)):.2f} |",
        "| wrong fixes (> 15 m) | 1 |",
        "| height error median / max (m) | 10.00 / 10.00 |",
        "| rejected | 4 |",
        f"| latency median / p95 / max (ms) | 85.5 / {latency_p95:.1f} / 91.0 |",
        "| too few inliers: # < # | 3 |",
        "| pose residual # px > # px \\| bad | 1 |",
        "![trajectory](trajectory.png)",
        "- flight: hand-built",
    ):
        assert line in text, line
    assert report.summary.startswith("| metric | value |")


def test_frames_csv_holds_every_frame(tmp_path):
    report = write_report(map_run(), tmp_path)
    with report.csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12
    assert rows[5]["name"] == "IMG_5" and float(rows[5]["error_m"]) == 20.0
    assert [float(rows[5][k]) for k in ("est_x", "est_y", "est_z")] == [150.0, 55.0, 140.0]
    assert rows[5]["accepted"] == "1" and float(rows[5]["latency_ms"]) == 85.0
    assert rows[10]["est_x"] == "" and rows[10]["error_m"] == "" and rows[10]["accepted"] == "0"
    assert rows[10]["reason"] == "pose residual 9.1 px > 4.0 px | bad"


def test_keyframe_report_scores_each_track(tmp_path):
    run, truth, estimate, ids = keyframe_run()
    report = write_report(run, tmp_path)
    assert [p.name for p in report.plots] == ["trajectory.png", "errors.png", "tracks.png"]
    orange = (14, 127, 255)  # the second track's colour, BGR
    for path in report.plots:
        assert_real_image(path)
    assert_real_image(report.plots[2], (BLUE, orange))
    data = json.loads(report.json_path.read_text())
    kept = estimate.copy()
    kept[[7, 14]] = np.nan
    expected = [tm.ate(kept[a:b], truth[a:b]) for a, b in ((0, 7), (7, 17), (17, 20))]
    tracks = data["tracks"]["tracks"]
    assert [(t["track_id"], t["first"], t["last"], t["frames"]) for t in tracks] == [
        (0, 0, 6, 7),
        (1, 7, 16, 8),
        (2, 17, 19, 3),
    ]
    for got, want in zip(tracks, expected, strict=True):
        assert got["ate"]["rmse_percent"] == pytest.approx(want.rmse_percent, rel=1e-12)
        assert got["ate"]["alignment"]["scale"] == pytest.approx(want.alignment.scale, rel=1e-12)
    percents = [e.rmse_percent for e in expected]
    assert data["tracks"]["median_percent"] == pytest.approx(np.median(percents), rel=1e-12)
    assert data["tracks"]["worst_percent"] == pytest.approx(max(percents), rel=1e-12)
    steps = np.concatenate(
        [
            tm.rpe_errors(kept[a:b], truth[a:b], 1, e.alignment)
            for (a, b), e in zip(((0, 7), (7, 17), (17, 20)), expected, strict=True)
        ]
    )
    assert data["rpe"]["median"] == pytest.approx(np.nanmedian(steps), rel=1e-12)
    # Pairs by true distance (~30 m steps with 3 m noise, one 100 m, one 60 m); frame i
    # answers for the pair (i-1, i): lost frame 7 ends the disjoint pair, 14 an overlapping one.
    assert data["pairs"] == {
        "overlapping": {"pairs": 17, "accepted": 16},
        "ambiguous": {"pairs": 1, "accepted": 1},
        "disjoint": {"pairs": 1, "accepted": 0},
    }
    assert data["success_rate"] == 0.9 and data["rejected"] == {"lost": 2}
    text = report.markdown_path.read_text()
    assert (
        f"| ATE % of track length median / worst | {np.median(percents):.2f} / {max(percents):.2f} |" in text
    )
    assert "| disjoint pairs accepted | 0 of 1 |" in text
    assert f"| 1 | 7 | 16 | 8 | {expected[1].rmse:.2f} | {expected[1].rmse_percent:.2f} |" in text


def test_map_raster_places_the_map_in_the_map_frame():
    image = np.full((100, 200, 3), 90, np.uint8)
    image[20:30, 150:160] = (255, 0, 0)  # a red block, pixel centre (154.5, 24.5)
    valid = np.ones((100, 200), bool)
    valid[:, :10] = False
    georef = GeoReference.north_up((1000.0, 2000.0), 0.5, rotation_deg=30.0)
    geomap = GeoMap(image, valid, georef)
    lo, hi = geomap.extent()
    rgba, (left, right, bottom, top) = map_raster(geomap, (lo[0], hi[0]), (lo[1], hi[1]))
    assert rgba.shape[2] == 4 and rgba.dtype == np.uint8
    assert (right - left) / rgba.shape[1] == pytest.approx(0.5)
    assert (top - bottom) / rgba.shape[0] == pytest.approx(0.5)
    red = np.argwhere((rgba[:, :, 0] > 200) & (rgba[:, :, 1] < 50))
    row, col = red.mean(axis=0)
    found = np.array([left + (col + 0.5) * 0.5, top - (row + 0.5) * 0.5])
    assert np.linalg.norm(found - georef.pixel_to_map([[154.5, 24.5]])[0]) < 0.5
    assert rgba[0, 0, 3] == 0  # a corner of the box lies off the rotated map
    inside = georef.pixel_to_map([[100.0, 50.0]])[0]
    c, r = int((inside[0] - left) / 0.5), int((top - inside[1]) / 0.5)
    assert rgba[r, c, 3] == 255 and tuple(rgba[r, c, :3]) == (90, 90, 90)
    no_data = georef.pixel_to_map([[4.0, 50.0]])[0]
    assert rgba[int((top - no_data[1]) / 0.5), int((no_data[0] - left) / 0.5), 3] == 0


def test_trajectory_over_a_map_shows_the_map(tmp_path):
    image = np.zeros((400, 400, 3), np.uint8)
    image[:, :, 1] = np.linspace(60, 200, 400, dtype=np.uint8)[None, :]
    image[::40] = (250, 250, 250)
    geomap = GeoMap(image, np.ones((400, 400), bool), GeoReference.north_up((-10.0, 250.0), 1.0))
    report = write_report(map_run(), tmp_path, geomap)
    picture = assert_real_image(report.plots[0], (BLUE,))
    assert (np.abs(picture.astype(int) - (250, 250, 250)).sum(axis=2) < 15).sum() > 500


def test_records_and_runs_are_checked():
    with pytest.raises(ValueError, match="accepted without an estimate"):
        FrameRecord(0.0, [0.0, 0.0], None, True)
    with pytest.raises(ValueError, match=r"\[x, y\] or \[x, y, z\]"):
        FrameRecord(0.0, [0.0, 0.0, 0.0, 0.0])
    assert np.isnan(FrameRecord(0.0, [1.0, 2.0]).truth[2])
    with pytest.raises(ValueError, match="mode"):
        Run("vio", "sift", [FrameRecord(0.0, [0.0, 0.0])])
    with pytest.raises(ValueError, match="at least one frame"):
        Run("map", "sift", [])


def test_progress_counts_frames():
    bar = progress(3, desc="map")
    for _ in range(3):
        bar.update()
    assert (bar.n, bar.total, bar.desc, bar.unit) == (3, 3, "map", "frame")
    bar.close()
    assert progress(3, enabled=False).disable


def nav_run() -> Run:
    """Five frames 30 m apart going east at 100 m: a rejected frame before the first fix, two fixes
    (one 3-4-5 m off), a frame carried by odometry whose rejected fix pose is 40 m off, a wrong fix."""
    P = np.diag([9.0, 16.0, 1.0])
    rows = [
        # accepted, fix offset (None: no pose), reason, failed check, source, nav offset, nav cov
        (False, None, "no homography: too few matches", "", "none", None, None),
        (True, (3.0, 4.0), "", "", "fix", (3.0, 4.0), P),  # NEES 2
        (True, (0.0, 1.0), "", "", "fix", (0.0, 2.0), np.eye(3)),  # NEES 4
        (False, (40.0, 0.0), "too few inliers: 21 < 30", "inliers", "odometry", (6.0, 0.0), 4 * np.eye(3)),
        (True, (0.0, 35.0), "", "", "fix", (0.0, 10.0), np.eye(3)),  # NEES 100, a wrong fix
    ]
    frames = []
    for i, (ok, fix, reason, check, source, nav, cov) in enumerate(rows):
        truth = np.array([30.0 * i, 0.0, 100.0])
        estimate = None if fix is None else truth + [*fix, 0.0]
        position = None if nav is None else truth + [*nav, 0.0]
        frames.append(
            FrameRecord(
                5.0 * i, truth, estimate, ok, reason, 100.0 * (i + 1), 0, f"IMG_{i}.jpg",
                failed_check=check, nav_source=source, nav_position=position, nav_covariance=cov,
                matched_by=("prior+correlated+refined" if i == 2 else "prior+guided+refined") if fix else "",
            )
        )  # fmt: skip
    return Run("map", "sift", frames, {"gps": "hand-built"}, wrong_fix_bound_m=30.0)


def test_navigation_report_scores_fixes_and_the_solution(tmp_path):
    report = write_report(nav_run(), tmp_path)
    data = json.loads(report.json_path.read_text())
    assert data["good_fixes"] == {"count": 2, "rate": 0.4, "bound_m": 15.0}
    assert data["map"]["accepted"] == 3 and data["map"]["wrong_fixes"] == 1
    assert data["map"]["errors"]["max"] == 35.0
    assert data["rejected_by_check"] == {"(no pose solved)": 1, "inliers": 1}
    assert data["accepted_by_matching"] == {"prior+guided+refined": 2, "prior+correlated+refined": 1}
    nav = data["navigation"]
    assert (nav["frames"], nav["with_solution"], nav["solution_rate"]) == (5, 4, 0.8)
    assert nav["errors"]["median"] == pytest.approx(5.5) and nav["errors"]["max"] == 10.0
    assert nav["nees"]["mean"] == pytest.approx((2.0 + 4.0 + 9.0 + 100.0) / 4)
    assert nav["nees"]["within_95"] == 0.5 and nav["nees"]["within_99"] == 0.75
    assert nav["sources"] == {"fix": 3, "none": 1, "odometry": 1}
    assert [f["nees"] for f in data["frames"]] == pytest.approx([None, 2.0, 4.0, 9.0, 100.0])
    for line in (
        "| fixes within 15 m of truth | 2 (40.0 %) |",
        "| wrong fixes (> 30 m) | 1 |",
        "| navigation solution | 4 (80.0 %) |",
        "| navigation error median / p95 / max (m) | 5.50 / 9.40 / 10.00 |",
        "| NEES mean (2 DOF, ideal 2.00) | 28.75 |",
        "| NEES <= 5.991 (χ² 95 %, ideal 0.95) | 0.50 |",
    ):
        assert line in report.summary
    md = report.markdown_path.read_text()
    assert "## Rejections by failed check" in md and "| inliers | 1 |" in md
    assert "## Navigation solution by source" in md and "| odometry | 1 |" in md
    assert "## Accepted fixes by matching" in md and "| prior+correlated+refined | 1 |" in md
    assert_real_image(report.plots[0], (BLUE, RED))


def test_navigation_frames_csv(tmp_path):
    report = write_report(nav_run(), tmp_path)
    with report.csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5
    required = "image t_s accepted reason failed_check east_m north_m error_m nav_source nav_east_m"
    required += " nav_north_m nav_sigma_m nav_error_m nees gps_east_m gps_north_m latency_ms"
    assert set(required.split()) <= set(rows[0])
    first, odometry = rows[0], rows[3]
    assert first["east_m"] == first["nav_east_m"] == first["nees"] == first["failed_check"] == ""
    assert first["nav_source"] == "none" and first["reason"].startswith("no homography")
    assert float(rows[1]["nav_sigma_m"]) == 4.0 and float(rows[1]["nees"]) == 2.0
    assert float(rows[1]["error_m"]) == 5.0 and float(rows[1]["gps_east_m"]) == 30.0
    # a rejected fix's pose is listed (not scored), beside the solution odometry carried
    assert odometry["accepted"] == "0" and odometry["failed_check"] == "inliers"
    assert rows[2]["matched_by"] == "prior+correlated+refined" and first["matched_by"] == ""
    assert float(odometry["east_m"]) == 130.0 and float(odometry["error_m"]) == 40.0
    assert float(odometry["nav_east_m"]) == 96.0 and float(odometry["nav_error_m"]) == 6.0
    assert float(odometry["latency_ms"]) == 400.0


def test_a_plain_map_run_has_no_navigation_scores(tmp_path):
    report = write_report(map_run(), tmp_path)
    data = json.loads(report.json_path.read_text())
    assert data["navigation"] is None and data["good_fixes"] is None
    assert "NEES" not in report.summary and "fixes within" not in report.summary
    assert report.csv_path.read_text().startswith("name,t_s,truth_x")


def test_navigation_fields_are_checked():
    with pytest.raises(ValueError, match="go together"):
        FrameRecord(0.0, [0.0, 0.0], nav_source="fix", nav_position=[1.0, 2.0])
    with pytest.raises(ValueError, match="2x2 or 3x3"):
        FrameRecord(0.0, [0.0, 0.0], nav_position=[1.0, 2.0], nav_covariance=np.eye(4))
    with pytest.raises(ValueError, match="no column"):
        nav_run().column("gps")
