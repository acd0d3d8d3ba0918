"""fm-eval's inputs: a flight bag (or an fm-simulate folder holding one) and its map, or an image
folder with its GPS log (a CSV or the images' EXIF) and camera, as frame tuples for the runs."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from feature_matching_ros.core.errors import FeatureMatchingError

if TYPE_CHECKING:
    from feature_matching_ros.core.evaluation.flight_log import GpsTrack
    from feature_matching_ros.core.maps.georef import GeoMap

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff")


def find_bag(flight: Path) -> Path:
    bag = flight / "bag" if (flight / "bag").is_dir() else flight
    if not bag.exists():
        raise FeatureMatchingError(f"no bag at {bag}")
    return bag


def bag_and_map(options: argparse.Namespace) -> tuple[Path, Path]:
    flight: Path = options.flight
    bag = find_bag(flight)
    map_path = options.map or flight / "map.png"
    if not map_path.is_file():
        raise FeatureMatchingError(f"no map at {map_path}: pass --map")
    return bag, map_path


def bag_frames(bag: Path) -> list:
    from feature_matching_ros.ros.bags.flight_bag import read_flight

    return [(lambda f=f: f.image, f.stamp, f.K, f.height, f.truth_position) for f in read_flight(bag)]


def is_image_folder(options: argparse.Namespace) -> bool:
    """An image folder (not a bag, nor an fm-simulate folder): --gps given, or a folder of images."""
    if options.gps is not None:
        return True
    folder: Path = options.flight
    if not folder.is_dir() or (folder / "bag").is_dir() or (folder / "metadata.yaml").is_file():
        return False
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir())


def _folder_log(options: argparse.Namespace, origin: tuple[float, float, float] | None = None) -> GpsTrack:
    """The folder's GpsTrack: the --gps CSV, or the images' EXIF (positions at ``origin``)."""
    from feature_matching_ros.core.evaluation.flight_log import read_exif_track, read_gps_csv

    if options.gps is not None:
        return read_gps_csv(options.gps)
    return read_exif_track(options.flight, origin)


def _camera(options: argparse.Namespace, first_image: Path) -> np.ndarray:
    """K from --fx/--fy/--cx/--cy; the focal length from the EXIF and the principal point at the
    image centre where not given."""
    fx, cx, cy = options.fx, options.cx, options.cy
    if fx is None or cx is None or cy is None:
        from feature_matching_ros.core.evaluation.flight_log import read_exif
        from feature_matching_ros.core.image import load_image

        if fx is None:
            fx = read_exif(first_image).focal_px
            if fx is None:
                raise FeatureMatchingError(
                    f"no focal length in the EXIF of {first_image.name}: pass --fx (and --fy, --cx, --cy)"
                )
        if cx is None or cy is None:
            h, w = load_image(first_image).shape[:2]
            cx = w / 2.0 if cx is None else cx
            cy = h / 2.0 if cy is None else cy
    fy = options.fy or fx
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def folder_frames(options: argparse.Namespace) -> list:
    from feature_matching_ros.core.evaluation.flight_log import image_folder_track
    from feature_matching_ros.core.image import load_image

    pairs = image_folder_track(options.flight, _folder_log(options))
    K = _camera(options, pairs[0][0])
    return [
        (lambda p=path: load_image(p), row.t, K, row.alt - options.ground, row.position)
        for path, row in pairs
    ]


def navigation_frames(options: argparse.Namespace, geomap: GeoMap) -> tuple[list, str]:
    """(path, t, K, height, truth) of the frames to navigate, and how the truth is in the map frame."""
    from feature_matching_ros.core.evaluation.flight_log import image_folder_track

    if options.first < 0:
        raise FeatureMatchingError(f"--first must be >= 0, got {options.first}")
    if options.gps is not None:
        log = _folder_log(options)
        east_north = log.csv_en
        frame = f"GPS log east_m/north_m of {options.gps} (taken to be the map frame)"
    else:
        origin = geomap.georef.geodetic_origin
        if origin is None:
            raise FeatureMatchingError(
                "the map's georeference has no geodetic_origin: EXIF GPS cannot be put in its frame; "
                "give a GPS CSV in the map frame with --gps"
            )
        log = _folder_log(options, origin)
        east_north = log.enu[:, :2]
        frame = "EXIF GPS on the WGS84 tangent plane at the map's geodetic_origin"
    pairs = image_folder_track(options.flight, log)
    end = None if options.limit is None else options.first + options.limit
    chosen = list(enumerate(pairs))[options.first : end]
    if not chosen:
        raise FeatureMatchingError(f"no frames left after --first {options.first} of {len(pairs)}")
    K = _camera(options, chosen[0][1][0])
    frames = []
    for i, (path, row) in chosen:
        height = row.alt - options.ground
        truth = (east_north[i, 0], east_north[i, 1], height)
        frames.append((path, row.t, K, None if options.no_altitude else height, truth))
    return frames, frame
