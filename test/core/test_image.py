"""Image loading and conversion: every bad input is a specific ImageError."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from feature_matching_ros.core import ImageError, load_image
from feature_matching_ros.core.image import as_gray, as_rgb, resize_max_edge, to_tensor, validate


def test_load_real_image_as_rgb(shared_data):
    image = load_image(shared_data / "pairs" / "graf1.png")
    assert image.shape == (640, 800, 3) and image.dtype == np.uint8
    bgr = cv2.imread(str(shared_data / "pairs" / "graf1.png"))
    np.testing.assert_array_equal(image[..., ::-1], bgr)


def test_load_rgba_map_drops_alpha(shared_data):
    image = load_image(shared_data / "maps" / "aukerman.png")
    assert image.shape == (810, 1053, 3)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ImageError, match="image file not found"):
        load_image(tmp_path / "nope.png")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    with pytest.raises(ImageError, match="cannot decode image file"):
        load_image(corrupt)


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((0, 10), np.uint8), "too small"),
        (np.zeros((4, 100), np.uint8), "too small"),
        (np.zeros((10, 10, 2), np.uint8), r"\[H x W\] or \[H x W x 3\]"),
        (np.zeros((10, 10, 3, 1), np.uint8), r"\[H x W\] or \[H x W x 3\]"),
        (np.zeros((10, 10), np.int32), "unsupported image dtype"),
        (np.full((10, 10), np.nan, np.float32), "non-finite"),
        ([[1, 2], [3, 4]], "expected a numpy image"),
    ],
)
def test_validate_rejects(image, message):
    with pytest.raises(ImageError, match=message):
        validate(image)


def test_depth_and_channel_conversions():
    mono16 = np.full((10, 12), 0x8000, np.uint16)
    assert validate(mono16).dtype == np.uint8 and validate(mono16)[0, 0] == 0x80
    unit = np.full((10, 12), 0.5, np.float32)
    assert validate(unit)[0, 0] == 127
    rgba = np.zeros((10, 12, 4), np.uint8)
    assert as_rgb(rgba).shape == (10, 12, 3)
    assert as_gray(np.zeros((10, 12, 3), np.uint8)).shape == (10, 12)
    assert as_rgb(np.zeros((10, 12), np.uint8)).shape == (10, 12, 3)


def test_resize_max_edge_and_tensor():
    image = np.zeros((480, 640, 3), np.uint8)
    small, scale = resize_max_edge(image, 320)
    assert small.shape == (240, 320, 3) and scale == 0.5
    same, scale = resize_max_edge(image, None)
    assert same is image and scale == 1.0
    tensor = to_tensor(np.full((8, 9), 255, np.uint8), "cpu")
    assert tensor.shape == (1, 3, 8, 9) and tensor.dtype == torch.float32 and float(tensor.max()) == 1.0
    assert to_tensor(image, "cpu", gray=True).shape == (1, 1, 480, 640)
