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
