"""A camera frame's size: checked before it is decoded, and bounded before it is matched.

A CompressedImage of a few kilobytes can declare 30000x30000 pixels and take gigabytes to decode,
so its size is read from the PNG IHDR or the JPEG frame header (SOFn) and checked first. A frame
larger than ``max_image_edge`` is matched downscaled, with its camera scaled alike.
"""

from __future__ import annotations

import struct

import numpy as np

from feature_matching_ros.core.errors import ImageError
from feature_matching_ros.core.image import resize_max_edge

from .camera import CameraModel
from .images import compressed_to_array, image_to_core

# Smallest frame side the nodes match: fewer pixels hold no usable features (the core needs 8).
MIN_FRAME_EDGE = 32

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# JPEG markers without a length field: TEM, RST0-7, SOI.
_STANDALONE = {0x01, *range(0xD0, 0xD9)}
# Start-of-frame markers (baseline, progressive, lossless, arithmetic); C4, C8 and CC are not frames.
_FRAME_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_START_OF_SCAN, _END_OF_IMAGE = 0xDA, 0xD9
# The JPEG frame header follows the tables and EXIF data: look this far into the data for it.
HEADER_BYTES = 1 << 18


def png_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG's IHDR chunk, or None when the data does not start with one."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, or None when none precedes the image data."""
    i = 2  # after SOI
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _STANDALONE:
            i += 2
            continue
        if marker in (_START_OF_SCAN, _END_OF_IMAGE):
            return None
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _FRAME_MARKERS:
            if i + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


def compressed_size(data: object) -> tuple[int, int] | None:
    """(width, height) a PNG or JPEG declares in its header, without decoding; None if not found."""
    head = bytes(memoryview(data)[:HEADER_BYTES]) if _has_buffer(data) else bytes(list(data[:HEADER_BYTES]))
    return png_size(head) or (jpeg_size(head) if head.startswith(b"\xff\xd8") else None)


def check_frame_size(width: int, height: int, max_pixels: int, what: str = "image") -> None:
    """ImageError unless a frame of ``width`` x ``height`` px can be matched and is within ``max_pixels``."""
    if width * height > max_pixels:
        raise ImageError(
            f"{what} declares {width}x{height} px ({width * height} px), more than max_frame_pixels "
            f"{max_pixels}: refused before decoding"
        )
    if min(width, height) < MIN_FRAME_EDGE:
        raise ImageError(
            f"{what} is {width}x{height} px: too small to match "
            f"(each side needs at least {MIN_FRAME_EDGE} px)"
        )


def decode_frame(msg: object, max_pixels: int) -> np.ndarray:
    """An Image or CompressedImage as the core's array, refused (ImageError) when its size is not one
    the nodes match; a compressed one is checked from its header before it is decoded."""
    if hasattr(msg, "format"):
        size = compressed_size(msg.data)
        if size is not None:
            check_frame_size(*size, max_pixels, "the CompressedImage header")
        image = compressed_to_array(msg)
    else:
        image = image_to_core(msg)
    check_frame_size(image.shape[1], image.shape[0], max_pixels)
    return image


def fit_frame(image: np.ndarray, camera: CameraModel, max_edge: int) -> tuple[np.ndarray, CameraModel]:
    """The frame downscaled to ``max_edge`` px on its longest side (0: as it is), and its camera."""
    small, _ = resize_max_edge(image, max_edge)
    if small is image:
        return image, camera
    return small, camera.scaled(small.shape[1], small.shape[0])


def to_frame_pixels(points: np.ndarray, fitted: tuple[int, int], frame: tuple[int, int]) -> np.ndarray:
    """Points in a ``fitted`` (width, height) copy of the frame, in the ``frame``'s own pixels
    (pixel centres on integers: the image edges stay on the edges)."""
    scale = np.array(frame, np.float64) / np.array(fitted, np.float64)
    return (np.asarray(points, np.float64) + 0.5) * scale - 0.5


def _has_buffer(data: object) -> bool:
    try:
        memoryview(data)
    except TypeError:
        return False
    return True
