import csv
import math
import shutil

import numpy as np
import pytest
from PIL import Image, TiffImagePlugin

from feature_matching_ros.core.errors import ImageError
from feature_matching_ros.core.evaluation.flight_log import (
    AMBIGUOUS,
    DISJOINT,
    OVERLAPPING,
    FlightLogError,
    classify_distance,
    classify_pairs,
    exif_focal_px,
    image_folder_track,
    read_exif,
    read_exif_track,
    read_gps_csv,
)
from feature_matching_ros.core.maps.georef import GeoReference, read_georeference

from ...conftest import require_file


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


def _dms(value: float) -> tuple:
    """Degrees as the EXIF (degrees, minutes, seconds) rationals, to 1e-6 arc-seconds."""
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60.0)
    seconds = round(((value - degrees) * 60.0 - minutes) * 60.0 * 1e6)
    R = TiffImagePlugin.IFDRational
    return (R(degrees, 1), R(minutes, 1), R(seconds, 1000000))


def write_exif(path, image, lat, lon, alt, when, focal=None, focal_35mm=None, sensor_width_px=None):
    """Save ``image`` (a PIL image) as a JPEG with EXIF GPS (lat/lon degrees, alt m), DateTimeOriginal
    ``when`` and, optionally, FocalLength (mm) with FocalPlaneXResolution for a 6.17 mm wide sensor
    of ``sensor_width_px`` pixels, or a 35 mm equivalent focal length."""
    R = TiffImagePlugin.IFDRational
    exif = Image.Exif()
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N" if lat >= 0 else "S", 2: _dms(lat), 3: "E" if lon >= 0 else "W", 4: _dms(lon)})
    if alt is not None:
        gps.update({5: b"\x00" if alt >= 0 else b"\x01", 6: R(round(abs(alt) * 100), 100)})
    ifd = exif.get_ifd(0x8769)
    ifd[0x9003] = when
    if focal is not None:
        width = sensor_width_px or image.width
        ifd.update(
            {0x920A: R(round(focal * 100), 100), 0xA20E: R(width * 100, 617), 0xA210: 4, 0xA002: width}
        )
    if focal_35mm is not None:
        ifd[0xA405] = focal_35mm
    image.save(path, exif=exif)


def test_exif_of_a_written_jpeg_reads_back(tmp_path):
    image = Image.new("RGB", (400, 300), (90, 120, 60))
    # an image downscaled from a 3600 px wide sensor: 4.3 mm on 6.17 mm is 557.5 px at 800 px
    write_exif(tmp_path / "b.jpg", image, 41.035, -83.305, 281.69, "2013:06:04 15:02:07", 4.3, None, 3600)
    info = read_exif(tmp_path / "b.jpg")
    assert info.lat == pytest.approx(41.035, abs=1e-9) and info.lon == pytest.approx(-83.305, abs=1e-9)
    assert info.alt == pytest.approx(281.69)
    assert info.focal_px == pytest.approx(4.3 / 6.17 * 400, rel=1e-6)  # the 400 px wide image
    assert exif_focal_px(tmp_path / "b.jpg") == info.focal_px
    write_exif(tmp_path / "c.jpg", image, -33.9, 151.2, -5.0, "2013:06:04 15:02:07", None, 28)
    south = read_exif(tmp_path / "c.jpg")
    assert (south.lat, south.lon, south.alt) == pytest.approx((-33.9, 151.2, -5.0))
    assert south.focal_px == pytest.approx(28.0 * 500.0 / math.hypot(36.0, 24.0))  # by the diagonal
    image.save(tmp_path / "bare.jpg")
    bare = read_exif(tmp_path / "bare.jpg")
    assert bare.lat is None and bare.time is None and bare.focal_px is None


def test_exif_track_is_in_time_order_at_an_origin(tmp_path):
    image = Image.new("RGB", (64, 48), (100, 100, 100))
    # written out of name order: the track follows DateTimeOriginal
    write_exif(tmp_path / "a.jpg", image, 41.0010, -83.3000, 300.0, "2013:06:04 15:00:10")
    write_exif(tmp_path / "b.jpg", image, 41.0000, -83.3000, 290.0, "2013:06:04 15:00:00")
    write_exif(tmp_path / "c.jpg", image, 41.0000, -83.2990, 310.0, "2013:06:04 15:01:00")
    (tmp_path / "notes.txt").write_text("not an image")
    track = read_exif_track(tmp_path)
    assert track.images == ("b.jpg", "a.jpg", "c.jpg")
    assert np.array_equal(track.t, [0.0, 10.0, 60.0])
    assert track.origin == pytest.approx((41.0, -83.3, 290.0))
    assert np.isnan(track.track_deg).all()
    north = 0.001 * math.pi / 180.0 * 6_363_000  # ~111 m per 0.001° of latitude here (WGS84)
    east = 0.001 * math.pi / 180.0 * 6_378_137 * math.cos(math.radians(41.0))
    assert track.enu[1, :2] == pytest.approx((0.0, north), rel=0.003, abs=0.01)
    assert track.enu[2, :2] == pytest.approx((east, 0.0), rel=0.003, abs=0.01)
    assert np.array_equal(track.csv_en, track.enu[:, :2])
    pairs = image_folder_track(tmp_path, track)
    assert [p.name for p, _ in pairs] == list(track.images)
    shifted = read_exif_track(tmp_path, origin=(41.0, -83.3, 250.0))
    assert np.allclose(shifted.enu[:, 2] - track.enu[:, 2], 40.0, atol=0.01)


def test_exif_track_refuses_images_without_gps(tmp_path):
    image = Image.new("RGB", (64, 48))
    write_exif(tmp_path / "a.jpg", image, 41.0, -83.3, 300.0, "2013:06:04 15:00:10")
    image.save(tmp_path / "b.jpg")
    with pytest.raises(FlightLogError, match="1 of 2 images .* no EXIF GPS .*: b.jpg"):
        read_exif_track(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FlightLogError, match="no JPEG"):
        read_exif_track(tmp_path / "empty")


def test_seneca_images_carry_no_exif(seneca):
    """The downscaled Seneca frames hold no EXIF at all (checked on every frame): their GPS is only
    in gps.csv. The round trip below writes that GPS into copies instead."""
    images = sorted((seneca / "images").glob("*.jpg"))
    assert len(images) == 50
    for path in images:
        info = read_exif(path)
        assert (info.lat, info.time, info.focal_px) == (None, None, None)
    with pytest.raises(FlightLogError, match="50 of 50 images"):
        read_exif_track(seneca / "images")


def test_seneca_gps_written_as_exif_reads_back_in_the_maps_frame(seneca, shared_data, tmp_path):
    log = read_gps_csv(seneca / "gps.csv")
    georef, _ = read_georeference(require_file(shared_data / "maps" / "seneca_mosaic.yaml"))
    chosen = [0, 18, 30, 49]
    for i in chosen:
        name = log.images[i]
        shutil.copy(seneca / "images" / name, tmp_path / name)
        seconds = int(log.t[i])
        when = f"2013:06:04 15:{seconds // 60:02d}:{seconds % 60:02d}"
        with Image.open(seneca / "images" / name) as image:
            write_exif(tmp_path / name, image, log.lat[i], log.lon[i], log.alt[i], when, 4.3)
    track = read_exif_track(tmp_path, georef.geodetic_origin)
    assert track.images == tuple(log.images[i] for i in chosen)
    assert np.array_equal(track.t, log.t[chosen] - log.t[0])
    assert track.lat == pytest.approx(log.lat[chosen], abs=1e-9)
    assert track.alt == pytest.approx(log.alt[chosen], abs=0.005)
    # the map frame is the CSV's east/north: the EXIF positions agree within 1 % of the distance
    # from the origin (the CSV's equirectangular approximation) plus rounding
    distance = np.linalg.norm(log.csv_en[chosen], axis=1)
    assert np.all(np.linalg.norm(track.enu[:, :2] - log.csv_en[chosen], axis=1) <= 0.01 * distance + 0.02)
    assert exif_focal_px(tmp_path / log.images[18]) == pytest.approx(557.5, rel=0.001)
