"""fm-simulate over relief writes a DEM beside the map; fm-eval --dem localises on it (the core path)."""

import json

import numpy as np
import pytest
import rasterio
import yaml

from feature_matching_ros.cli import evaluate, simulate


@pytest.fixture(scope="module")
def hilly_flight(tmp_path_factory):
    out = tmp_path_factory.mktemp("sim") / "flight"
    code = simulate.main(
        ["--out", str(out), "--frames", "4", "--map-size", "1024", "--seed", "2", "--relief", "50"]
        + ["--relief-wavelength", "500", "--altitude", "120", "--altitude-variation", "0"]
    )
    assert code == 0
    return out


def test_simulate_over_relief_writes_the_dem_and_heights_above_it(hilly_flight):
    with rasterio.open(hilly_flight / "dem.tif") as ds:
        heights = ds.read(1)
        assert ds.crs.to_epsg() == 32632  # the UTM zone of the default geodetic origin (47 N, 8 E)
    assert 440.0 < np.nanmin(heights) < 460.0 and 540.0 < np.nanmax(heights) < 560.0  # 500 m +- 50
    assert yaml.safe_load((hilly_flight / "map.yaml").read_text())["geodetic_origin"] == [47.0, 8.0, 500.0]
    summary = yaml.safe_load((hilly_flight / "simulation.yaml").read_text())["summary"]
    low, high = summary["terrain"]["height_above_ground_m"]
    truth = np.loadtxt(hilly_flight / "ground_truth.csv", delimiter=",", skiprows=1)
    assert low == pytest.approx(truth[:, 3].min()) and high == pytest.approx(truth[:, 3].max())
    assert high - low > 1.0  # a constant altitude over hills: the height above ground varies


def test_eval_with_the_dem_fixes_and_without_it_is_metres_off(hilly_flight, tmp_path, capsys):
    errors = {}
    for name, extra in (("dem", ["--dem", str(hilly_flight / "dem.tif")]), ("flat", [])):
        out = tmp_path / name
        assert evaluate.main([str(hilly_flight), "--via", "direct", "--out", str(out), *extra]) == 0
        report = json.loads((out / "report.json").read_text())
        errors[name] = report["map"]
    assert errors["dem"]["accepted"] == 4 and errors["dem"]["errors"]["max"] < 1.0
    # as flat ground the fixes are off by the local slope times the height (or rejected)
    assert errors["flat"]["accepted"] < 4 or errors["flat"]["errors"]["median"] > 3.0


def test_simulate_refuses_relief_and_a_dem_together(tmp_path, capsys):
    dem = tmp_path / "dem.tif"
    dem.write_bytes(b"")
    code = simulate.main(["--out", str(tmp_path / "f"), "--frames", "1", "--relief", "50", "--dem", str(dem)])
    assert code == 2 and "exclude each other" in capsys.readouterr().err
