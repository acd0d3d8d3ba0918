"""Matchers: mutual NN, dual-softmax, LightGlue / LighterGlue, SuperGlue and XFeat* refinement."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch
from kornia import feature as KF

from ..errors import ConfigError
from . import weights
from .extractors import XFeatExtractor, load_into
from .types import Features, Matches


class Matcher(Protocol):
    name: str

    def match(self, f0: Features, f1: Features) -> Matches: ...


def _check_compatible(f0: Features, f1: Features) -> None:
    if f0.descriptors.shape[1] != f1.descriptors.shape[1] or f0.descriptors.dtype != f1.descriptors.dtype:
        raise ConfigError(
            f"descriptors do not match: {tuple(f0.descriptors.shape[1:])} {f0.descriptors.dtype} vs "
            f"{tuple(f1.descriptors.shape[1:])} {f1.descriptors.dtype} (features of different extractors?)"
        )


def _is_unit(d: torch.Tensor) -> bool:
    return bool(((d * d).sum(1) - 1.0).abs().max() < 1e-3)


def nearest_neighbours(
    d0: torch.Tensor, d1: torch.Tensor, *, second: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """Nearest neighbours both ways: (nn01 [M], its distance [M], second-best distance [M] or None, nn10 [N]).

    Hamming distance for uint8 (binary) descriptors, through OpenCV's popcount matcher;
    Euclidean otherwise, from one matrix product when the descriptors are unit length.
    """
    if d0.dtype == torch.uint8:
        return _hamming_neighbours(d0, d1, second)
    d0, d1 = d0.float(), d1.float()
    if _is_unit(d0) and _is_unit(d1):
        sim = d0 @ d1.T
        nn10 = column_argbest(sim)
        if second and sim.shape[1] > 1:
            top, nn01 = sim.topk(2, dim=1)
            dist = (2.0 - 2.0 * top).clamp_min_(0.0).sqrt_()
            return nn01[:, 0], dist[:, 0], dist[:, 1], nn10
        best, nn01 = sim.max(1)
        return nn01, (2.0 - 2.0 * best).clamp_min_(0.0).sqrt_(), None, nn10
    squared = (d0 * d0).sum(1, keepdim=True) + (d1 * d1).sum(1)[None] - 2.0 * (d0 @ d1.T)
    nn10 = column_argbest(squared, largest=False)
    if second and squared.shape[1] > 1:
        low, nn01 = squared.topk(2, dim=1, largest=False)
        dist = low.clamp_min_(0.0).sqrt_()
        return nn01[:, 0], dist[:, 0], dist[:, 1], nn10
    low, nn01 = squared.min(1)
    return nn01, low.clamp_min_(0.0).sqrt_(), None, nn10


def column_argbest(scores: torch.Tensor, largest: bool = True, rows: int = 256) -> torch.Tensor:
    """``scores.argmax(0)`` (``argmin`` unless ``largest``), the first index on ties, from blocks of
    ``rows`` rows: on a CPU, torch reduces a row-major matrix along its first dimension several times
    slower than this (8000 x 8000: 453 ms against 72 ms)."""
    if scores.device.type != "cpu" or scores.shape[0] <= rows:
        return scores.argmax(0) if largest else scores.argmin(0)
    best = index = None
    for start in range(0, scores.shape[0], rows):
        block = scores[start : start + rows]
        value, at = block.max(0) if largest else block.min(0)
        if best is None:
            best, index = value, at
            continue
        better = value > best if largest else value < best
        best = torch.where(better, value, best)
        index = torch.where(better, at + start, index)
    return index


def _hamming_neighbours(
    d0: torch.Tensor, d1: torch.Tensor, second: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    a, b = d0.cpu().numpy(), d1.cpu().numpy()
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    k = 2 if second and len(b) > 1 else 1
    forward = matcher.knnMatch(a, b, k=k)
    nn01 = np.array([m[0].trainIdx for m in forward], np.int64)
    best = np.array([m[0].distance for m in forward], np.float32)
    nn10 = np.array([m.trainIdx for m in matcher.match(b, a)], np.int64)
    runner_up = np.array([m[1].distance for m in forward], np.float32) if k == 2 else None

    def tensor(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x).to(d0.device)

    return tensor(nn01), tensor(best), None if runner_up is None else tensor(runner_up), tensor(nn10)


def mutual(nn01: torch.Tensor, nn10: torch.Tensor) -> torch.Tensor:
    """Mask over image-0 points whose nearest neighbour has them as its nearest neighbour."""
    return nn10[nn01] == torch.arange(nn01.shape[0], device=nn01.device)


def mutual_nearest(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Index pairs (i0, i1) that are each other's best in a [M x N] score matrix (higher is better)."""
    nn01 = scores.argmax(1)
    keep = mutual(nn01, column_argbest(scores))
    return torch.nonzero(keep).flatten(), nn01[keep]


class MutualNearestNeighbour:
    """Mutual nearest neighbours, optionally with Lowe's ratio test and a distance ceiling."""

    name = "NN-mutual"

    def __init__(self, ratio_threshold: float | None = None, distance_threshold: float | None = None) -> None:
        if ratio_threshold is not None and not 0.0 < ratio_threshold <= 1.0:
            raise ConfigError(f"ratio_threshold must be in (0, 1], got {ratio_threshold}")
        self.ratio_threshold = ratio_threshold
        self.distance_threshold = distance_threshold

    @torch.inference_mode()
    def match(self, f0: Features, f1: Features) -> Matches:
        _check_compatible(f0, f1)
        if len(f0) == 0 or len(f1) == 0:
            return Matches.empty()
        nn01, best, second, nn10 = nearest_neighbours(
            f0.descriptors, f1.descriptors, second=self.ratio_threshold is not None
        )
        keep = mutual(nn01, nn10)
        if second is not None:
            keep &= best <= self.ratio_threshold * second
        if self.distance_threshold is not None:
            keep &= best <= self.distance_threshold
        idx0 = torch.nonzero(keep).flatten()
        return Matches.from_indices(f0, f1, idx0, nn01[idx0], 1.0 / (1.0 + best[idx0]))


class DualSoftmax:
    """Mutual best of the product of row- and column-softmaxed similarities, above ``threshold``."""

    name = "Dual-Softmax"

    def __init__(self, threshold: float = 0.2, temperature: float = 0.02) -> None:
        if temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {temperature}")
        self.threshold = float(threshold)
        self.temperature = float(temperature)

    @torch.inference_mode()
    def match(self, f0: Features, f1: Features) -> Matches:
        _check_compatible(f0, f1)
        if len(f0) == 0 or len(f1) == 0:
            return Matches.empty()
        d0 = torch.nn.functional.normalize(f0.descriptors.float(), dim=1)
        d1 = torch.nn.functional.normalize(f1.descriptors.float(), dim=1)
        sim = (d0 @ d1.T) / self.temperature
        prob = sim.softmax(0) * sim.softmax(1)
        idx0, idx1 = mutual_nearest(prob)
        score = prob[idx0, idx1]
        keep = score > self.threshold
        return Matches.from_indices(f0, f1, idx0[keep], idx1[keep], score[keep])


# Architecture facts of the released LightGlue checkpoints (cvg/LightGlue, verlab/accelerated_features).
LIGHTGLUE_MODELS: dict[str, dict] = {
    "disk": {"weights": "disk-lightglue", "arch": {"input_dim": 128}},
    "aliked": {"weights": "aliked-lightglue", "arch": {"input_dim": 128}},
    "xfeat": {
        "weights": "xfeat-lighterglue",
        "arch": {"input_dim": 64, "descriptor_dim": 96, "n_layers": 6, "num_heads": 1},
        "defaults": {"depth_confidence": -1.0, "width_confidence": 0.95},
    },
}


def lightglue_state_dict(raw: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """Map a released checkpoint to kornia's LightGlue keys.

    LighterGlue files bundle the extractor too: only ``matcher.``-prefixed entries are kept.
    The released files name layers ``self_attn.{i}`` / ``cross_attn.{i}``, kornia names them
    ``transformers.{i}.self_attn`` / ``transformers.{i}.cross_attn``; stale keys are dropped.
    """
    if any(k.startswith("matcher.") for k in raw):
        raw = {k[len("matcher.") :]: v for k, v in raw.items() if k.startswith("matcher.")}
    renamed = {}
    for key, value in raw.items():
        if key.startswith("log_assignment.") and key.endswith(".r"):
            continue  # an unused scalar that early checkpoints (disk_lightglue.pth) still carry
        for i in range(n_layers):
            for block in ("self_attn", "cross_attn"):
                old = f"{block}.{i}."
                if key.startswith(old):
                    key = f"transformers.{i}.{block}." + key[len(old) :]
        renamed[key] = value
    return renamed


class LightGlueMatcher:
    """LightGlue (DISK, ALIKED) or LighterGlue (XFeat) with configurable early exit and pruning.

    ``depth_confidence`` stops the layers early (-1 disables), ``width_confidence`` prunes
    points (-1 disables), ``filter_threshold`` is the minimum match confidence.
    """

    def __init__(
        self,
        features: str,
        *,
        filter_threshold: float = 0.1,
        depth_confidence: float | None = None,
        width_confidence: float | None = None,
        device: str | torch.device = "cpu",
        weights_dir: str | Path | None = None,
    ) -> None:
        if features not in LIGHTGLUE_MODELS:
            raise ConfigError(f"no LightGlue model for {features!r}; choose from {sorted(LIGHTGLUE_MODELS)}")
        spec = LIGHTGLUE_MODELS[features]
        conf = {"depth_confidence": 0.95, "width_confidence": 0.99, **spec.get("defaults", {})}
        if depth_confidence is not None:
            conf["depth_confidence"] = depth_confidence
        if width_confidence is not None:
            conf["width_confidence"] = width_confidence
        self.name = "lighterglue" if features == "xfeat" else f"{features}-lightglue"
        self.device = torch.device(device)
        self.model = KF.LightGlue(
            features=None, filter_threshold=filter_threshold, flash=False, **spec["arch"], **conf
        )
        n_layers = self.model.conf.n_layers
        raw = weights.load_state_dict(spec["weights"], weights_dir)
        load_into(
            self.model,
            lightglue_state_dict(raw, n_layers),
            spec["weights"],
            ignore_missing=("confidence_thresholds",),
        )
        self.model.to(self.device)

    @torch.inference_mode()
    def match(self, f0: Features, f1: Features) -> Matches:
        _check_compatible(f0, f1)
        if len(f0) == 0 or len(f1) == 0:
            return Matches.empty()

        def side(f: Features) -> dict[str, torch.Tensor]:
            return {
                "keypoints": f.keypoints[None].to(self.device),
                "descriptors": f.descriptors[None].float().to(self.device),
                "image_size": torch.tensor([f.image_size], device=self.device, dtype=torch.float32),
            }

        out = self.model({"image0": side(f0), "image1": side(f1)})
        pairs, scores = out["matches"][0], out["scores"][0]
        return Matches.from_indices(f0, f1, pairs[:, 0], pairs[:, 1], scores)


class SuperGlueMatcher:
    """SuperGlue (``models/superglue.py``) on SuperPoint features with Magic Leap's ``variant``
    weights, "outdoor" or "indoor".

    ``match_threshold`` is the minimum assignment probability of a match.
    """

    weights_by_variant = {"outdoor": "superglue-outdoor", "indoor": "superglue-indoor"}

    def __init__(
        self,
        variant: str = "outdoor",
        *,
        match_threshold: float = 0.2,
        sinkhorn_iterations: int = 100,
        device: str | torch.device = "cpu",
        weights_dir: str | Path | None = None,
    ) -> None:
        from .models import SuperGlue  # deferred: only this matcher needs it

        if variant not in self.weights_by_variant:
            raise ConfigError(
                f"unknown SuperGlue weights {variant!r}; choose from {sorted(self.weights_by_variant)}"
            )
        weight_id = self.weights_by_variant[variant]
        self.name = f"superglue-{variant}"
        self.device = torch.device(device)
        self.model = SuperGlue(
            {"match_threshold": match_threshold, "sinkhorn_iterations": sinkhorn_iterations}
        )
        load_into(self.model, weights.load_state_dict(weight_id, weights_dir), weight_id)
        self.model.to(self.device)

    @torch.inference_mode()
    def match(self, f0: Features, f1: Features) -> Matches:
        _check_compatible(f0, f1)
        if f0.descriptors.shape[1] != self.model.conf["descriptor_dim"]:
            raise ConfigError(
                f"SuperGlue needs 256-D SuperPoint descriptors, got {f0.descriptors.shape[1]}-D"
            )
        if len(f0) == 0 or len(f1) == 0:
            return Matches.empty()
        data = {}
        for i, f in enumerate((f0, f1)):
            data[f"keypoints{i}"] = f.keypoints[None].float().to(self.device)
            data[f"scores{i}"] = f.scores[None].float().to(self.device)
            data[f"descriptors{i}"] = f.descriptors.T[None].float().to(self.device)
            data[f"image_size{i}"] = f.image_size
        out = self.model(data)
        matches0 = out["matches0"][0]
        idx0 = torch.nonzero(matches0 >= 0).flatten()
        return Matches.from_indices(f0, f1, idx0, matches0[idx0], out["matching_scores0"][0][idx0])


class XFeatStarMatcher:
    """XFeat*'s semi-dense matching: mutual NN of coarse features, then the fine head's sub-pixel offsets.

    Takes the features of ``XFeatExtractor(dense=True)`` and shares its network. Matches whose
    refinement confidence is below ``fine_threshold`` are dropped.
    """

    name = "xfeat_dense"

    def __init__(self, extractor: XFeatExtractor, fine_threshold: float = 0.25) -> None:
        if not extractor.dense:
            raise ConfigError("the XFeat* matcher needs the dense XFeat extractor (feature 'xfeat_dense')")
        self.net = extractor.model.net
        self.fine_threshold = float(fine_threshold)

    @torch.inference_mode()
    def match(self, f0: Features, f1: Features) -> Matches:
        _check_compatible(f0, f1)
        if len(f0) == 0 or len(f1) == 0 or "scales" not in f0.extras:
            return Matches.empty()
        d0 = torch.nn.functional.normalize(f0.descriptors.float(), dim=1)
        d1 = torch.nn.functional.normalize(f1.descriptors.float(), dim=1)
        idx0, idx1 = mutual_nearest(d0 @ d1.T)
        logits = self.net.fine_matcher(torch.cat([f0.descriptors[idx0], f1.descriptors[idx1]], dim=-1))
        conf = (logits * 3).softmax(-1).max(-1).values
        offsets = _soft_argmax_offsets(logits.view(-1, 8, 8))
        keep = conf > self.fine_threshold
        base = Matches.from_indices(f0, f1, idx0[keep], idx1[keep], conf[keep])
        refined = f0.keypoints[idx0[keep]] + offsets[keep] * f0.extras["scales"][idx0[keep], None]
        return Matches(base.indices, refined.cpu().float().numpy(), base.points1, base.scores)


def _soft_argmax_offsets(heatmaps: torch.Tensor, temperature: float = 3.0) -> torch.Tensor:
    """[N x 2] expected (x, y) offsets from the centre of [N x H x W] heatmaps."""
    n, h, w = heatmaps.shape
    prob = (temperature * heatmaps.reshape(n, -1)).softmax(-1).reshape(n, h, w)
    xs = torch.arange(w, device=heatmaps.device, dtype=prob.dtype) - w // 2
    ys = torch.arange(h, device=heatmaps.device, dtype=prob.dtype) - h // 2
    return torch.stack([(prob.sum(1) * xs).sum(-1), (prob.sum(2) * ys).sum(-1)], dim=-1)
