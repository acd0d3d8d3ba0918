"""Loading, validating and converting images for the extractors.

The core's image convention: a numpy array, [H x W] grey or [H x W x 3] RGB, uint8.
Other depths (uint16, float) and 4-channel images are accepted and converted here, in one place.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch

from .errors import ImageError


def load_image(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8 [H x W x 3] (grey files become three equal channels)."""
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image file not found: {path}")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise ImageError(f"cannot decode image file (corrupt or unsupported format): {path}")
    if raw.ndim == 3 and raw.shape[2] == 4:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGRA2BGR)
    if raw.ndim == 3:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGR2RGB)
    return as_rgb(raw)


def _to_uint8(image: np.ndarray) -> np.ndarray:
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return (image >> 8).astype(np.uint8)
    if np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ImageError("image contains non-finite values")
        peak = float(image.max()) if image.size else 0.0
        scale = 255.0 if peak <= 1.0 else 1.0
        return np.clip(image * scale, 0, 255).astype(np.uint8)
    raise ImageError(f"unsupported image dtype {image.dtype}; expected uint8, uint16 or float")


def validate(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as uint8 [H x W] or [H x W x 3], or raise ImageError saying what is wrong."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"expected a numpy image, got {type(image).__name__}")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, :3]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ImageError(f"expected an [H x W] or [H x W x 3] image, got shape {image.shape}")
    if image.shape[0] < 8 or image.shape[1] < 8:
        raise ImageError(f"image too small to match: {image.shape[1]}x{image.shape[0]} px (minimum 8x8)")
    return _to_uint8(image)


def as_rgb(image: np.ndarray) -> np.ndarray:
    image = validate(image)
    return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB) if image.ndim == 2 else image


def as_gray(image: np.ndarray) -> np.ndarray:
    image = validate(image)
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image


def equalized(image: np.ndarray, clip_limit: float = 2.0) -> np.ndarray:
    """Local contrast equalised (CLAHE, 8x8 tiles) on the lightness channel, colours kept; grey
    stays grey. Bare fields, haze or overexposure then leave a detector texture to find."""
    clahe = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(8, 8))
    if image.ndim == 2 or image.shape[2] == 1:
        return clahe.apply(np.ascontiguousarray(image.reshape(image.shape[:2])))
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = clahe.apply(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def resize_max_edge(image: np.ndarray, max_edge: int | None) -> tuple[np.ndarray, float]:
    """Downscale so the longer edge is at most ``max_edge``; returns the image and the scale applied."""
    longest = max(image.shape[:2])
    if not max_edge or longest <= max_edge:
        return image, 1.0
    scale = max_edge / longest
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale


def to_tensor(image: np.ndarray, device: torch.device | str, *, gray: bool = False) -> torch.Tensor:
    """[1 x C x H x W] float32 in [0, 1]; C is 1 with ``gray`` else 3 (RGB)."""
    array = as_gray(image)[:, :, None] if gray else as_rgb(image)
    tensor = torch.from_numpy(np.ascontiguousarray(array)).to(device)
    return tensor.permute(2, 0, 1)[None].float().div_(255.0)
