import csv
import math

import numpy as np
import pytest

from feature_matching_ros.core.errors import ImageError
from feature_matching_ros.core.flight_log import (
    AMBIGUOUS,
    DISJOINT,
    OVERLAPPING,
    FlightLogError,
    classify_distance,
    classify_pairs,
    image_folder_track,
    read_gps_csv,
)
from feature_matching_ros.core.georef import GeoReference

from ..conftest import require_file


@pytest.fixture(scope="module")
def seneca(shared_data):
    return require_file(shared_data / "flights" / "seneca")


@pytest.fixture(scope="module")
def raw_rows(seneca):
    with (seneca / "gps.csv").open(newline="") as f:
        return list(csv.DictReader(f))


def test_seneca_log_reads_fifty_rows(seneca, raw_rows):
    track = read_gps_csv(seneca / "gps.csv")
    assert len(track) == 50
    assert track.images[0] == "IMG_0446.jpg" and track.images[-1] == raw_rows[-1]["image"]
    assert np.array_equal(track.t, [float(r["t_s"]) for r in raw_rows])
    assert np.array_equal(track.lat, [float(r["lat_deg"]) for r in raw_rows])
    assert np.array_equal(track.track_deg, [float(r["track_deg"]) for r in raw_rows])
    assert track.origin == (track.lat[0], track.lon[0], track.alt[0])
    assert np.allclose(track.enu[0], 0.0)
    row = track.row(3)
    assert row.image == "IMG_0449.jpg" and row.t == 18.0
    assert row.csv_east == pytest.approx(64.77) and row.csv_north == pytest.approx(44.0)
    assert row.position == pytest.approx(tuple(track.enu[3]))


def test_seneca_enu_agrees_with_the_logs_local_metres(seneca, raw_rows):
    track = read_gps_csv(seneca / "gps.csv")
    csv_en = np.array([[float(r["east_m"]), float(r["north_m"])] for r in raw_rows])
    assert np.array_equal(track.csv_en, csv_en)
    distance = np.linalg.norm(csv_en, axis=1)
    difference = np.linalg.norm(track.enu[:, :2] - csv_en, axis=1)
    assert distance.max() > 200.0  # the check covers a few hundred metres
    # Within 1 % of the distance from the origin (plus the CSV's 1 cm rounding).
    assert np.all(difference <= 0.01 * distance + 0.01)
    # Up is the altitude above the first fix, less the Earth's curvature (< 1 cm over 350 m).
    assert np.allclose(track.enu[:, 2], track.alt - track.alt[0], atol=0.02)


def test_enu_round_trips_to_wgs84_and_follows_a_given_origin(seneca):
    track = read_gps_csv(seneca / "gps.csv")
    frame = GeoReference.north_up((0.0, 0.0), 1.0, geodetic_origin=track.origin)
    lat, lon, alt = frame.to_geodetic(*track.enu[30])
    assert (lat, lon, alt) == pytest.approx((track.lat[30], track.lon[30], track.alt[30]), abs=1e-7)
    # An origin 100 m west of the first fix (at the same latitude) shifts every east by ~+100 m.
    west = track.lon[0] - math.degrees(100.0 / (6378137.0 * math.cos(math.radians(track.lat[0]))))
    shifted = read_gps_csv(seneca / "gps.csv", origin=(track.lat[0], west, track.alt[0]))
    assert shifted.origin[1] == west
    assert np.allclose(shifted.enu[:, 0] - track.enu[:, 0], 100.0, atol=0.5)
    assert np.allclose(shifted.enu[:, 1] - track.enu[:, 1], 0.0, atol=0.5)


@pytest.mark.parametrize("bounds", [(45.0, 85.0), (30.0, 60.0), (50.0, 50.0)])
def test_seneca_pair_counts_match_the_thresholds(seneca, raw_rows, bounds):
    below, above = bounds
    east = np.array([float(r["east_m"]) for r in raw_rows])
    north = np.array([float(r["north_m"]) for r in raw_rows])
    steps = np.hypot(np.diff(east), np.diff(north))
    pairs = classify_pairs(read_gps_csv(seneca / "gps.csv").enu, below, above)
    assert len(pairs) == 49
    assert [(p.first, p.second) for p in pairs[:2]] == [(0, 1), (1, 2)]
    labels = [p.label for p in pairs]
    assert labels.count(OVERLAPPING) == int((steps < below).sum())
    assert labels.count(DISJOINT) == int((steps > above).sum())
    assert labels.count(AMBIGUOUS) == 49 - int((steps < below).sum()) - int((steps > above).sum())
    assert np.allclose([p.distance_m for p in pairs], steps, rtol=0.01)


def test_seneca_default_pair_counts(seneca):
    labels = [p.label for p in classify_pairs(read_gps_csv(seneca / "gps.csv").enu)]
    # Survey lines are ~30 m apart; the turns at the ends of lines make the disjoint pairs.
    assert (labels.count(OVERLAPPING), labels.count(AMBIGUOUS), labels.count(DISJOINT)) == (34, 11, 4)


def test_classify_distance_bounds():
    assert classify_distance(44.99) == OVERLAPPING
    assert classify_distance(45.0) == AMBIGUOUS
    assert classify_distance(85.0) == AMBIGUOUS
    assert classify_distance(85.01) == DISJOINT
    with pytest.raises(ValueError, match="overlapping_below <= disjoint_above"):
        classify_distance(10.0, 90.0, 40.0)
    with pytest.raises(ValueError, match="N x 2"):
        classify_pairs(np.zeros(5))


def test_image_folder_track_pairs_every_image(seneca):
    pairs = image_folder_track(seneca / "images", seneca / "gps.csv")
    assert len(pairs) == 50
    path, row = pairs[7]
    assert path == seneca / "images" / row.image and path.is_file()
    assert row.index == 7


def test_image_folder_track_names_missing_images(seneca, raw_rows, tmp_path):
    log = tmp_path / "gps.csv"
    with log.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(raw_rows[0]))
        writer.writeheader()
        writer.writerows(raw_rows[:3])
        writer.writerow({**raw_rows[3], "image": "IMG_9999.jpg"})
        writer.writerow({**raw_rows[4], "image": "IMG_9998.jpg"})
    with pytest.raises(ImageError, match="2 of 5 images .* IMG_9999.jpg, IMG_9998.jpg"):
        image_folder_track(seneca / "images", log)
    with pytest.raises(ImageError, match="image folder not found"):
        image_folder_track(tmp_path / "nowhere", log)


def test_bad_logs_are_refused(tmp_path):
    missing_column = tmp_path / "a.csv"
    missing_column.write_text("image,t_s,lat_deg\nx.jpg,0,41\n")
    with pytest.raises(FlightLogError, match="missing columns"):
        read_gps_csv(missing_column)
    header = "image,t_s,lat_deg,lon_deg,alt_m,track_deg,east_m,north_m\n"
    not_a_number = tmp_path / "b.csv"
    not_a_number.write_text(header + "x.jpg,0,41,-83,abc,0,0,0\n")
    with pytest.raises(FlightLogError, match="not a number"):
        read_gps_csv(not_a_number)
    empty = tmp_path / "c.csv"
    empty.write_text(header)
    with pytest.raises(FlightLogError, match="no rows"):
        read_gps_csv(empty)
    backwards = tmp_path / "d.csv"
    backwards.write_text(header + "x.jpg,5,41,-83,200,0,0,0\ny.jpg,4,41,-83,200,0,0,0\n")
    with pytest.raises(FlightLogError, match="must not decrease"):
        read_gps_csv(backwards)
    with pytest.raises(FlightLogError, match="cannot read"):
        read_gps_csv(tmp_path / "none.csv")
