"""fm-eval map mode on an image folder: the continuous navigation over real Seneca frames, scored
against the GPS log (a CSV, or the images' EXIF)."""

import csv
import json

import pytest
from PIL import Image, TiffImagePlugin

from feature_matching_ros.cli import evaluate
from feature_matching_ros.core.evaluation.flight_log import read_gps_csv

from ..conftest import require_file

# Log rows 18-23: the first three localise with sift on the mosaic, the next three are carried by odometry.
FIRST, COUNT = 18, 6
CAMERA = ["--fx", "557.5", "--cx", "400", "--cy", "300"]


@pytest.fixture(scope="module")
def seneca(shared_data):
    flight = require_file(shared_data / "flights" / "seneca")
    return flight, require_file(shared_data / "maps" / "seneca_mosaic.png")


@pytest.fixture(scope="module")
def navigated(seneca, tmp_path_factory):
    flight, mosaic = seneca
    out = tmp_path_factory.mktemp("nav") / "eval"
    args = [str(flight / "images"), "--mode", "map", "--map", str(mosaic), "--gps", str(flight / "gps.csv")]
    args += [*CAMERA, "--ground", "220", "--map-sigma", "5", "--first", str(FIRST), "--limit", str(COUNT)]
    assert evaluate.main([*args, "--out", str(out)]) == 0
    with (out / "frames.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return out, rows, json.loads((out / "report.json").read_text())


def test_navigation_report_files_and_columns(navigated, seneca):
    out, rows, _ = navigated
    for name in ("frames.csv", "report.json", "report.md", "trajectory.png", "errors.png"):
        assert (out / name).is_file(), name
    columns = "image t_s accepted reason failed_check matched_by east_m north_m error_m nav_source nav_east_m"
    columns += " nav_north_m nav_sigma_m nav_up_sigma_m nav_error_m nees gps_east_m gps_north_m latency_ms"
    assert set(columns.split()) <= set(rows[0])
    log = read_gps_csv(seneca[0] / "gps.csv")
    assert [r["image"] for r in rows] == list(log.images[FIRST : FIRST + COUNT])
    for row, i in zip(rows, range(FIRST, FIRST + COUNT), strict=True):
        assert float(row["gps_east_m"]) == pytest.approx(log.csv_en[i, 0])  # the CSV's map frame
        assert float(row["t_s"]) == log.t[i]
        assert float(row["latency_ms"]) > 0


def test_fixes_are_right_and_the_solution_follows_the_first_fix(navigated):
    out, rows, report = navigated
    accepted = [r for r in rows if r["accepted"] == "1"]
    assert any(float(r["error_m"]) <= 15.0 for r in accepted)
    assert all(float(r["error_m"]) <= 30.0 for r in accepted)
    assert report["map"]["wrong_fixes"] == 0 and report["settings"]["wrong_fix_bound_m"] == 30.0
    assert report["good_fixes"]["count"] >= 1
    first = next(i for i, r in enumerate(rows) if r["accepted"] == "1")
    for row in rows[first:]:
        assert row["nav_source"] in ("fix", "odometry", "coast")
        for name in ("nav_east_m", "nav_north_m", "nav_sigma_m", "nav_up_sigma_m", "nav_error_m", "nees"):
            assert row[name] != "", f"{row['image']}: {name} is empty"
    for row in rows:
        if row["accepted"] == "0":
            assert row["reason"] != ""
        else:
            assert row["matched_by"].startswith(("prior", "sweep")), row["matched_by"]
    nav = report["navigation"]
    assert nav["with_solution"] >= COUNT - first and nav["nees"]["count"] == nav["with_solution"]
    summary = (out / "report.md").read_text()
    assert "| fixes within 15 m of truth |" in summary and "NEES mean" in summary
    # the height too; a fix's height sigma is at least the configured 5 % of the height
    assert "height NEES mean (1 DOF" in summary and nav["height_nees"]["count"] == nav["with_solution"]
    assert report["metadata"]["fix_height_sigma"] == 0.05
    assert report["metadata"]["whole_map_interval_s"] == 3.0
    assert report["metadata"]["whole_map_budget_s"] == 0.0
    first_fix = rows[first]  # no prediction to fuse with: the fix's own height sigma
    assert first_fix["nav_source"] == "fix"
    assert float(first_fix["nav_up_sigma_m"]) >= 0.05 * float(first_fix["nav_up_m"]) - 1e-3


def _exif_copy(flight, folder, i, log):
    """A Seneca frame with its gps.csv position, time and focal length written into its EXIF."""
    R = TiffImagePlugin.IFDRational

    def dms(value):
        value = abs(value)
        d, m = int(value), int((abs(value) - int(value)) * 60)
        return (R(d, 1), R(m, 1), R(round(((value - d) * 60 - m) * 60e6), 1_000_000))

    exif = Image.Exif()
    exif.get_ifd(0x8825).update(
        {
            1: "N",
            2: dms(log.lat[i]),
            3: "W",
            4: dms(log.lon[i]),
            5: b"\x00",
            6: R(round(log.alt[i] * 100), 100),
        }
    )
    seconds = int(log.t[i])
    exif.get_ifd(0x8769).update(
        {
            0x9003: f"2013:06:04 15:{seconds // 60:02d}:{seconds % 60:02d}",
            0x920A: R(43, 10),  # 4.3 mm on a 6.17 mm wide sensor of 800 px: fx 557.5
            0xA20E: R(80000, 617),
            0xA210: 4,
        }
    )
    with Image.open(flight / "images" / log.images[i]) as image:
        image.save(folder / log.images[i], exif=exif, quality=95)


def test_an_exif_only_folder_is_navigated_in_the_maps_frame(seneca, tmp_path, capsys):
    flight, mosaic = seneca
    log = read_gps_csv(flight / "gps.csv")
    images = tmp_path / "images"
    images.mkdir()
    for i in (FIRST, FIRST + 1):
        _exif_copy(flight, images, i, log)
    out = tmp_path / "eval"
    args = [str(images), "--map", str(mosaic), "--ground", "220", "--map-sigma", "5", "--out", str(out)]
    assert evaluate.main(args) == 0  # no --gps, no camera: EXIF, and the principal point at the centre
    assert "| fixes within 15 m of truth |" in capsys.readouterr().out
    report = json.loads((out / "report.json").read_text())
    assert report["metadata"]["gps"] == "image EXIF"
    assert "geodetic_origin" in report["metadata"]["truth frame"]
    assert report["metadata"]["K"][0] == pytest.approx([4.3 / 6.17 * 800, 0.0, 400.0], abs=0.01)
    with (out / "frames.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["image"] for r in rows] == [log.images[FIRST], log.images[FIRST + 1]]
    for row, i in zip(rows, (FIRST, FIRST + 1), strict=True):
        # the EXIF GPS in the map frame lands within 1 % of its distance from the origin of the CSV's
        assert float(row["gps_east_m"]) == pytest.approx(log.csv_en[i, 0], abs=3.0)
        assert float(row["gps_north_m"]) == pytest.approx(log.csv_en[i, 1], abs=3.0)
    assert report["good_fixes"]["count"] >= 1 and report["map"]["wrong_fixes"] == 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--first", "60"], "no frames left"),
        (["--first", "-1"], "--first must be >= 0"),
        (["--fix-height-sigma", "-0.1"], "--fix-height-sigma must be in [0, 1]"),
        (["--whole-map-interval", "-1"], "--whole-map-interval must be >= 0 s"),
        (["--whole-map-interval", "nan"], "--whole-map-interval must be >= 0 s"),
        (["--whole-map-budget", "-2"], "--whole-map-budget must be >= 0 s"),
    ],
)
def test_bad_folder_arguments_exit_2(seneca, tmp_path, capsys, extra, message):
    flight, mosaic = seneca
    args = [str(flight / "images"), "--gps", str(flight / "gps.csv"), *CAMERA, "--out", str(tmp_path)]
    assert evaluate.main([*args, "--map", str(mosaic), *extra]) == 2
    assert message in capsys.readouterr().err
    assert evaluate.main(args) == 2
    assert "needs the map" in capsys.readouterr().err


def test_first_needs_an_image_folder(tmp_path, capsys):
    assert evaluate.main([str(tmp_path / "nothing"), "--first", "3"]) == 2
    assert "--first needs an image folder" in capsys.readouterr().err
