"""The core's work written straight against kornia / OpenCV, and core vs direct timed on the same frames."""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any, Protocol

import cv2
import numpy as np
import torch
from kornia import feature as KF

from ...core import Features, Pipeline, RobustParams
from ...core.matching import weights as weight_files
from ...core.matching.extractors import CHANNELS_LAST, load_into
from ...core.matching.matchers import LIGHTGLUE_MODELS, lightglue_state_dict
from ...core.matching.zoo import load_zoo
from .frames import query_frame
from .measure import run_core, spread


class Direct(Protocol):
    """The same work as a core pipeline, written straight against kornia / OpenCV."""

    def set_reference(self, image: np.ndarray) -> None: ...

    def run(self, image: np.ndarray) -> tuple[int, int]:
        """(matches, homography inliers) of ``image`` against the reference."""
        ...


def _homography_inliers(p0: np.ndarray, p1: np.ndarray, robust: RobustParams) -> int:
    if len(p0) < 4:
        return 0
    _, mask = cv2.findHomography(
        p0,
        p1,
        cv2.USAC_MAGSAC,
        robust.reproj_threshold,
        maxIters=robust.max_iter,
        confidence=robust.confidence,
    )
    return int(mask.sum()) if mask is not None else 0


def _kornia_lightglue(weight_id: str, weights_dir: str | None, **conf: Any) -> KF.LightGlue:
    """kornia's LightGlue with a released checkpoint (loading is shared with the core; timing is not)."""
    model = KF.LightGlue(features=None, flash=False, **conf)
    state = lightglue_state_dict(weight_files.load_state_dict(weight_id, weights_dir), model.conf.n_layers)
    load_into(model, state, weight_id, ignore_missing=("confidence_thresholds",))
    return model


def _kornia_xfeat(conf: dict[str, Any], weights_dir: str | None) -> KF.XFeat:
    model = KF.XFeat(top_k=int(conf["max_keypoints"]), detection_threshold=conf["keypoint_threshold"])
    load_into(model.net, weight_files.load_state_dict("xfeat", weights_dir), "xfeat")
    return model


def _gray_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return (torch.from_numpy(gray)[None, None].to(device).float() / 255.0).contiguous(
        memory_format=CHANNELS_LAST
    )


def _rgb_tensor(image: np.ndarray, device: torch.device) -> torch.Tensor:
    tensor = torch.from_numpy(image).permute(2, 0, 1)[None].to(device).float() / 255.0
    return tensor.contiguous(memory_format=CHANNELS_LAST)


class DirectXFeat:
    """kornia XFeat.detectAndCompute, XFeat._match_mnn (no similarity floor, as the core) and MAGSAC."""

    def __init__(
        self, conf: dict[str, Any], robust: RobustParams, device: torch.device, wdir: str | None
    ) -> None:
        self.device, self.robust = device, robust
        self.model = _kornia_xfeat(conf, wdir).to(device, memory_format=CHANNELS_LAST)

    @torch.inference_mode()
    def set_reference(self, image: np.ndarray) -> None:
        self.reference = self.model.detectAndCompute(_gray_tensor(image, self.device))[0]

    @torch.inference_mode()
    def run(self, image: np.ndarray) -> tuple[int, int]:
        query = self.model.detectAndCompute(_gray_tensor(image, self.device))[0]
        idx0, idx1 = self.model._match_mnn(self.reference["descriptors"], query["descriptors"], min_cossim=-1)
        p0 = self.reference["keypoints"][idx0].cpu().numpy()
        p1 = query["keypoints"][idx1].cpu().numpy()
        return len(idx0), _homography_inliers(p0, p1, self.robust)


class DirectSIFT:
    """OpenCV SIFT (unit-norm descriptors, as the core), BFMatcher ratio test + mutual check, MAGSAC."""

    def __init__(
        self, conf: dict[str, Any], robust: RobustParams, device: torch.device, wdir: str | None
    ) -> None:
        self.robust = robust
        self.ratio = float(conf.get("ratio_threshold") or 1.0)
        self.sift = cv2.SIFT_create(nfeatures=int(conf["max_keypoints"]))
        self.matcher = cv2.BFMatcher(cv2.NORM_L2)

    def _detect(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keypoints, descriptors = self.sift.detectAndCompute(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), None)
        descriptors = descriptors / np.maximum(np.linalg.norm(descriptors, axis=1, keepdims=True), 1e-6)
        return np.float32([k.pt for k in keypoints]), descriptors

    def set_reference(self, image: np.ndarray) -> None:
        self.points0, self.descriptors0 = self._detect(image)

    def run(self, image: np.ndarray) -> tuple[int, int]:
        points1, descriptors1 = self._detect(image)
        backward = np.array([m.trainIdx for m in self.matcher.match(descriptors1, self.descriptors0)])
        pairs = [
            (best.queryIdx, best.trainIdx)
            for best, second in self.matcher.knnMatch(self.descriptors0, descriptors1, k=2)
            if best.distance <= self.ratio * second.distance and backward[best.trainIdx] == best.queryIdx
        ]
        idx = np.array(pairs, np.int64).reshape(-1, 2)
        return len(idx), _homography_inliers(self.points0[idx[:, 0]], points1[idx[:, 1]], self.robust)


class DirectLightGlue:
    """A kornia extractor (ALIKED-n16 or XFeat) with kornia LightGlue / LighterGlue, then MAGSAC."""

    def __init__(
        self,
        features: str,
        conf: dict[str, Any],
        robust: RobustParams,
        device: torch.device,
        wdir: str | None,
    ) -> None:
        self.device, self.robust = device, robust
        glue_conf = {
            k: conf[k] for k in ("filter_threshold", "depth_confidence", "width_confidence") if k in conf
        }
        if features == "xfeat":
            self.xfeat = _kornia_xfeat(conf, wdir).to(device, memory_format=CHANNELS_LAST)
            model = LIGHTGLUE_MODELS["xfeat"]
            glue_conf = {**model["defaults"], **glue_conf}
            self.glue = _kornia_lightglue(model["weights"], wdir, **model["arch"], **glue_conf)
        else:
            self.aliked = KF.ALIKED(
                "aliked-n16",
                max_num_keypoints=int(conf["max_keypoints"]),
                detection_threshold=conf["keypoint_threshold"],
                nms_radius=2,
            )
            load_into(
                self.aliked,
                weight_files.load_state_dict("aliked-n16", wdir),
                "aliked-n16",
                ignore_missing=("hw_grid",),
            )
            self.aliked.to(device, memory_format=CHANNELS_LAST)
            model = LIGHTGLUE_MODELS["aliked"]
            self.glue = _kornia_lightglue(model["weights"], wdir, **model["arch"], **glue_conf)
        self.glue.to(device)
        self.features = features

    def _detect(self, image: np.ndarray) -> dict[str, torch.Tensor]:
        if self.features == "xfeat":
            out = self.xfeat.detectAndCompute(_gray_tensor(image, self.device))[0]
            keypoints, descriptors = out["keypoints"], out["descriptors"]
        else:
            out = self.aliked(_rgb_tensor(image, self.device))[0]
            keypoints, descriptors = out.keypoints, out.descriptors
        size = torch.tensor([[image.shape[1], image.shape[0]]], device=self.device, dtype=torch.float32)
        return {"keypoints": keypoints[None], "descriptors": descriptors[None], "image_size": size}

    @torch.inference_mode()
    def set_reference(self, image: np.ndarray) -> None:
        self.reference = self._detect(image)

    @torch.inference_mode()
    def run(self, image: np.ndarray) -> tuple[int, int]:
        query = self._detect(image)
        pairs = self.glue({"image0": self.reference, "image1": query})["matches"][0]
        p0 = self.reference["keypoints"][0][pairs[:, 0]].cpu().numpy()
        p1 = query["keypoints"][0][pairs[:, 1]].cpu().numpy()
        return len(pairs), _homography_inliers(p0, p1, self.robust)


DirectFactory = Callable[[dict[str, Any], RobustParams, torch.device, "str | None"], Direct]
DIRECT: dict[str, DirectFactory] = {
    "xfeat(sparse)": DirectXFeat,
    "sift": DirectSIFT,
    "aliked+lightglue": lambda conf, robust, dev, wdir: DirectLightGlue("aliked", conf, robust, dev, wdir),
    "xfeat+lightglue": lambda conf, robust, dev, wdir: DirectLightGlue("xfeat", conf, robust, dev, wdir),
}


def entry_conf(name: str) -> dict[str, Any]:
    """The extractor and matcher settings the registry gives zoo entry ``name``, flattened."""
    zoo = load_zoo()
    entry = zoo[name]
    return {
        "max_keypoints": zoo.defaults["max_keypoints"],
        "keypoint_threshold": zoo.defaults["keypoint_threshold"],
        **entry.feature_conf,
        **entry.matcher_conf,
    }


def compare_direct(
    name: str,
    pipeline: Pipeline,
    reference_features: Features,
    reference: np.ndarray,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Core and direct wall-clock ms per frame, alternating which goes first, on the same frames."""
    if pipeline.robust.method != "CV2_USAC_MAGSAC":
        return {"skipped": f"the direct path uses USAC_MAGSAC, the core is set to {pipeline.robust.method}"}
    direct = DIRECT[name](entry_conf(name), pipeline.robust, torch.device(args.device), args.weights_dir)
    direct.set_reference(reference)
    core_ms, direct_ms, direct_matches, direct_inliers = [], [], [], []
    sides = {
        "core": lambda frame, truth: run_core(pipeline, reference_features, frame, truth),
        "direct": lambda frame, truth: direct.run(frame),
    }
    for index in range(args.warmup + args.frames):
        frame, truth = query_frame(reference, index, args.seed)
        timings, outputs = {}, {}
        for side in ("core", "direct") if index % 2 == 0 else ("direct", "core"):
            start = time.perf_counter()
            outputs[side] = sides[side](frame, truth)
            timings[side] = (time.perf_counter() - start) * 1e3
        if index >= args.warmup:
            core_ms.append(timings["core"])
            direct_ms.append(timings["direct"])
            direct_matches.append(outputs["direct"][0])
            direct_inliers.append(outputs["direct"][1])
    core_median, direct_median = statistics.median(core_ms), statistics.median(direct_ms)
    return {
        "direct_ms": spread(direct_ms),
        "core_ms": spread(core_ms),
        "overhead_pct": 100.0 * (core_median / direct_median - 1.0),
        "paired_overhead_ms_median": float(np.median(np.subtract(core_ms, direct_ms))),
        "direct_matches_median": float(np.median(direct_matches)),
        "direct_inliers_median": float(np.median(direct_inliers)),
    }
