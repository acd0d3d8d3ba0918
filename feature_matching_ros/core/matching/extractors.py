"""Keypoint extractors: OpenCV's classical detectors, kornia's learned networks and the package's
own networks (``models/``: SuperPoint, SEKD, ALIKE).

Every extractor takes a validated uint8 image (see ``image.py``) and returns ``Features`` in
the pixel frame of that image. Learned networks get their weights only through ``weights/``
(verified local files); nothing here downloads.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
from kornia import feature as KF

from ..errors import ConfigError, WeightsError
from ..image import as_gray, to_tensor
from . import weights
from .types import Features

# Channels-last tensors speed up XFeat and ALIKED on CPU (measured at 640x480 on 2 cores: XFeat
# 55 -> 39 ms, ALIKED 623 -> 436 ms, identical keypoints); DISK is slower with it (1604 -> 1845 ms).
CHANNELS_LAST = torch.channels_last


class Extractor(Protocol):
    """``rotation_invariant``: keypoints and descriptors survive any in-plane rotation, so a map
    search around a prior needs no heading hypotheses (a search of the whole map still tries them)."""

    name: str
    device: torch.device
    rotation_invariant: bool

    def extract(self, image: np.ndarray) -> Features: ...


def load_into(
    module: torch.nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    weight_id: str,
    *,
    ignore_missing: tuple[str, ...] = (),
) -> None:
    """Load a state dict; any missing learned parameter, unexpected key or tensor of the wrong
    shape is a WeightsError."""
    try:
        result = module.load_state_dict(dict(state_dict), strict=False)
    except RuntimeError as exc:  # torch reports shape mismatches this way, whatever ``strict``
        detail = " ".join(str(exc).split())[:400]
        raise WeightsError(f"weights '{weight_id}' do not fit {type(module).__name__}: {detail}") from exc
    missing = [k for k in result.missing_keys if not k.endswith(ignore_missing)]
    if missing or result.unexpected_keys:
        raise WeightsError(
            f"weights '{weight_id}' do not fit {type(module).__name__}: "
            f"missing {missing[:5]}, unexpected {list(result.unexpected_keys)[:5]}"
        )
    module.eval()


def _features(
    keypoints: torch.Tensor,
    descriptors: torch.Tensor,
    scores: torch.Tensor,
    image: np.ndarray,
    **extras: torch.Tensor,
) -> Features:
    return Features(
        keypoints.float().reshape(-1, 2),
        descriptors.reshape(-1, descriptors.shape[-1]),
        scores.float().reshape(-1),
        (int(image.shape[1]), int(image.shape[0])),
        dict(extras),
    )


class OpenCVExtractor:
    """SIFT (float descriptors) or ORB / AKAZE (binary descriptors) from OpenCV."""

    kinds = ("sift", "orb", "akaze")

    def __init__(self, kind: str, max_keypoints: int = 2000, device: str | torch.device = "cpu") -> None:
        if kind not in self.kinds:
            raise ConfigError(f"unknown OpenCV extractor {kind!r}; choose from {self.kinds}")
        self.name = kind
        self.rotation_invariant = True
        self.max_keypoints = int(max_keypoints)
        self.device = torch.device(device)
        if kind == "sift":
            self._detector = cv2.SIFT_create(nfeatures=self.max_keypoints)
        elif kind == "orb":
            self._detector = cv2.ORB_create(nfeatures=self.max_keypoints, fastThreshold=10)
        else:
            self._detector = cv2.AKAZE_create(threshold=0.0005)

    def extract(self, image: np.ndarray) -> Features:
        gray = as_gray(image)
        keypoints, descriptors = self._detector.detectAndCompute(gray, None)
        width = 128 if self.name == "sift" else self._detector.descriptorSize()
        if descriptors is None or not keypoints:
            dtype = np.float32 if self.name == "sift" else np.uint8
            descriptors, keypoints = np.zeros((0, width), dtype), ()
        responses = np.array([k.response for k in keypoints], np.float32)
        order = np.argsort(-responses, kind="stable")[: self.max_keypoints]
        xy = np.array([k.pt for k in keypoints], np.float32).reshape(-1, 2)[order]
        descriptors = descriptors[order]
        if self.name == "sift":
            norms = np.linalg.norm(descriptors, axis=1, keepdims=True)
            descriptors = descriptors / np.maximum(norms, 1e-6)
        return _features(
            torch.from_numpy(xy).to(self.device),
            torch.from_numpy(np.ascontiguousarray(descriptors)).to(self.device),
            torch.from_numpy(responses[order]).to(self.device),
            gray,
        )


class XFeatExtractor:
    """XFeat sparse keypoints (64-D descriptors); with ``dense`` the semi-dense coarse features of XFeat*."""

    def __init__(
        self,
        max_keypoints: int = 2000,
        keypoint_threshold: float = 0.05,
        *,
        dense: bool = False,
        device: str | torch.device = "cpu",
        weights_dir: str | Path | None = None,
    ) -> None:
        self.name = "xfeat_dense" if dense else "xfeat"
        self.rotation_invariant = False
        self.dense = dense
        self.max_keypoints = int(max_keypoints)
        self.device = torch.device(device)
        self.model = KF.XFeat(top_k=self.max_keypoints, detection_threshold=keypoint_threshold)
        load_into(self.model.net, weights.load_state_dict("xfeat", weights_dir), "xfeat")
        self.model.to(self.device, memory_format=CHANNELS_LAST)

    @torch.inference_mode()
    def extract(self, image: np.ndarray) -> Features:
        tensor = to_tensor(image, self.device, gray=True).contiguous(memory_format=CHANNELS_LAST)
        if self.dense:
            out = self.model.detectAndComputeDense(tensor, top_k=self.max_keypoints, multiscale=True)
            keypoints = out["keypoints"][0]
            return _features(
                keypoints,
                out["descriptors"][0],
                torch.ones_like(keypoints[:, 0]),
                image,
                scales=out["scales"][0],
            )
        out = self.model.detectAndCompute(tensor, top_k=self.max_keypoints)[0]
        return _features(out["keypoints"], out["descriptors"], out["scores"], image)


class ALIKEDExtractor:
    """ALIKED (128-D descriptors); ``aliked-n16rot`` is the rotation-robust variant."""

    variants = ("aliked-n16", "aliked-n16rot", "aliked-n32", "aliked-t16")

    def __init__(
        self,
        variant: str = "aliked-n16",
        max_keypoints: int = 2000,
        keypoint_threshold: float = 0.05,
        *,
        device: str | torch.device = "cpu",
        weights_dir: str | Path | None = None,
    ) -> None:
        if variant not in self.variants:
            raise ConfigError(f"unknown ALIKED variant {variant!r}; choose from {self.variants}")
        self.name = variant
        self.rotation_invariant = "rot" in variant
        self.device = torch.device(device)
        self.model = KF.ALIKED(
            variant,
            max_num_keypoints=int(max_keypoints),
            detection_threshold=keypoint_threshold,
            nms_radius=2,
        )
        load_into(
            self.model, weights.load_state_dict(variant, weights_dir), variant, ignore_missing=("hw_grid",)
        )
        self.model.to(self.device, memory_format=CHANNELS_LAST)
        # The dense network (backbone and heads); an inference backend may take its place
        # (inference.attach), keypoint detection (DKD) and descriptors (SDDH) stay kornia's.
        self.dense_map = self.model.extract_dense_map

    @torch.inference_mode()
    def extract(self, image: np.ndarray) -> Features:
        tensor = to_tensor(image, self.device).contiguous(memory_format=CHANNELS_LAST)
        feature_map, score_map = self.dense_map(tensor)
        keypoints, scores, _ = self.model.dkd(score_map)
        descriptors, _ = self.model.desc_head(feature_map, keypoints)
        height, width = tensor.shape[-2:]
        scale = torch.tensor([width - 1, height - 1], device=self.device, dtype=torch.float32)
        return _features(scale * (keypoints[0] + 1) / 2, descriptors[0], scores[0], image)


class DISKExtractor:
    """DISK (128-D descriptors), the depth-supervised checkpoint."""

    def __init__(
        self,
        max_keypoints: int = 2000,
        keypoint_threshold: float = 0.05,
        *,
        device: str | torch.device = "cpu",
        weights_dir: str | Path | None = None,
    ) -> None:
        self.name = "disk"
        self.rotation_invariant = False
        self.max_keypoints = int(max_keypoints)
        self.keypoint_threshold = float(keypoint_threshold)
        self.device = torch.device(device)
        self.model = KF.DISK()
        state = weights.load_state_dict("disk-depth", weights_dir)
        if "extractor" not in state:
            raise WeightsError("weights 'disk-depth' have no 'extractor' entry; is it a DISK checkpoint?")
        load_into(self.model, state["extractor"], "disk-depth")
        self.model.to(self.device)

    @torch.inference_mode()
    def extract(self, image: np.ndarray) -> Features:
        out = self.model(
            to_tensor(image, self.device),
            n=self.max_keypoints,
            window_size=5,
            score_threshold=self.keypoint_threshold,
            pad_if_not_divisible=True,
        )[0]
        return _features(out.keypoints, out.descriptors, out.detection_scores, image)


class OwnNetworkExtractor:
    """SuperPoint, SEKD or ALIKE: networks of ``models/`` with their verified weight files.

    ``keypoint_threshold`` is on each network's own score scale (SuperPoint's cell
    probability, SEKD's keypoint class probability, ALIKE's sigmoid score).
    """

    def __init__(
        self,
        kind: str,
        max_keypoints: int = 2000,
        keypoint_threshold: float = 0.005,
        *,
        device: str | torch.device = "cpu",
        weights_dir: str | Path | None = None,
    ) -> None:
        from . import models  # deferred: only these extractors need the own networks

        conf = {"max_keypoints": int(max_keypoints), "keypoint_threshold": float(keypoint_threshold)}
        if kind == "superpoint":
            weight_id, self.model, gray = "superpoint-v1", models.SuperPoint(conf), True
        elif kind == "sekd":
            weight_id, self.model, gray = "sekd", models.SEKD(conf), True
        elif kind in models.alike.VARIANTS:
            weight_id, self.model, gray = kind, models.ALIKE({**conf, "variant": kind}), False
        else:
            raise ConfigError(
                f"unknown network {kind!r}; choose from superpoint, sekd, {models.alike.VARIANTS}"
            )
        self.name = kind
        self.rotation_invariant = False
        self.gray = gray
        self.device = torch.device(device)
        state = weights.load_state_dict(weight_id, weights_dir)
        if kind == "sekd":
            if not isinstance(state.get("state_dict"), Mapping):
                raise WeightsError("weights 'sekd' have no 'state_dict' entry; is it SEKD's checkpoint?")
            state = state["state_dict"]
        load_into(self.model, state, weight_id)
        # Channels-last, measured at 640x480 on 2 busy cores: SuperPoint 1398 -> 982 ms, SEKD
        # 2310 -> 1339 ms, ALIKE-N 467 -> 385 ms, ALIKE-T 228 -> 197 ms.
        self.model.to(self.device, memory_format=CHANNELS_LAST)

    @torch.inference_mode()
    def extract(self, image: np.ndarray) -> Features:
        tensor = to_tensor(image, self.device, gray=self.gray).contiguous(memory_format=CHANNELS_LAST)
        out = self.model.detect(tensor)
        return _features(out["keypoints"], out["descriptors"], out["scores"], image)
