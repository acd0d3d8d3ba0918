"""fm-match end to end: in-process for speed, and once as the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess

import cv2
import numpy as np
import pytest

from feature_matching_ros.cli.match import main
from feature_matching_ros.core import corner_error


def test_match_graf_writes_picture_and_json(shared_data, tmp_path, capsys):
    pairs = shared_data / "pairs"
    out, record = tmp_path / "vis.png", tmp_path / "out.json"
    args = ["--matcher", "sift", "--ransac", "CV2_USAC_MAGSAC", "--ransac-threshold", "3"]
    code = main(
        [str(pairs / "graf1.png"), str(pairs / "graf3.png"), *args, "--out", str(out), "--json", str(record)]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert "matches" in text and "inliers" in text and "time [ms]" in text
    summary = json.loads(record.read_text())
    assert summary["matcher"] == "sift" and summary["num_inliers"] > 100
    truth = np.loadtxt(pairs / "graf_H1to3.txt")
    assert corner_error(np.array(summary["model"]), truth, 800, 640) < 3.8
    picture = cv2.imread(str(out))
    assert picture.shape == (640, 1600, 3)
    green = (picture[..., 1] > 200) & (picture[..., 0] < 80) & (picture[..., 2] < 80)
    assert green.sum() > 1000  # inlier lines are drawn


def test_fundamental_geometry(shared_data, capsys):
    pairs = shared_data / "pairs"
    code = main([str(pairs / "aero1.jpg"), str(pairs / "aero3.jpg"), "--geometry", "Fundamental"])
    assert code == 0
    assert "Fundamental via CV2_USAC_MAGSAC" in capsys.readouterr().out


def test_bad_inputs_give_one_line_and_exit_2(shared_data, tmp_path, capsys):
    graf1 = str(shared_data / "pairs" / "graf1.png")
    assert main([graf1, str(tmp_path / "missing.png")]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"not a jpeg")
    assert main([graf1, str(corrupt)]) == 2
    assert "cannot decode" in capsys.readouterr().err
    assert main([graf1, graf1, "--matcher", "nosuch"]) == 2
    assert "unknown matcher 'nosuch'" in capsys.readouterr().err
    assert main([graf1, graf1, "--matcher", "loftr"]) == 2
    assert "no package on the registry carries" in capsys.readouterr().err


def test_list_shows_every_entry_with_availability(capsys):
    assert main(["--list"]) == 0
    text = capsys.readouterr().out
    assert "superpoint+lightglue" in text and "release asset only" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.strip()}
    assert "LicenseRef-MagicLeap-academic-non-commercial" in lines["superpoint+superglue"]
    assert lines["sekd"].rstrip().endswith("MIT") and lines["alike-t"].rstrip().endswith("BSD-3-Clause")
    assert "xfeat(sparse)" in text and "entries run here" in text


def test_demo_console_script(tmp_path):
    script = shutil.which("fm-match")
    assert script, "fm-match is not installed: run `make setup`"
    run = subprocess.run([script, "--demo", "--out-dir", str(tmp_path)], capture_output=True, text=True,
                         timeout=300)  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "PASS" in run.stdout
    summary = json.loads((tmp_path / "result.json").read_text())
    assert summary["corner_error_px"] < 3.0
    assert (tmp_path / "matches.png").is_file() and (tmp_path / "H_reference_to_query.txt").is_file()


def test_unrelated_images_fail_with_the_reason_and_exit_1(shared_data, tmp_path, capsys):
    """box.png vs aero1.jpg: the default matcher finds a "homography" with ~6 % inliers."""
    pairs = shared_data / "pairs"
    images = [str(pairs / "box.png"), str(pairs / "aero1.jpg")]
    record = tmp_path / "out.json"
    assert main([*images, "--json", str(record)]) == 1
    text = capsys.readouterr().out
    assert "geometry    FAILED: only " in text and " matches are inliers (" in text, text
    summary = json.loads(record.read_text())
    assert summary["geometry_success"] is False and summary["model"] is None
    assert summary["geometry_reason"].startswith("only ")
    # with both checks off the estimator's own verdict stands, as before
    assert main([*images, "--min-inliers", "0", "--min-inlier-ratio", "0"]) == 0
    assert "inliers " in capsys.readouterr().out


def test_bad_support_flags_exit_2(shared_data, capsys):
    graf1 = str(shared_data / "pairs" / "graf1.png")
    for flags in (["--min-inliers", "-3"], ["--min-inlier-ratio", "1.5"]):
        with pytest.raises(SystemExit) as exit_info:
            main([graf1, graf1, *flags])
        assert exit_info.value.code == 2
        assert "must be" in capsys.readouterr().err
