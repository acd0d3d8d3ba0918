"""The one registry: zoo name -> (extractor, matcher) with the entry's settings, overridable per call."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..errors import ConfigError, ZooError
from ..geometry import RobustParams
from . import inference, weights
from .extractors import (
    ALIKEDExtractor,
    DISKExtractor,
    Extractor,
    OpenCVExtractor,
    OwnNetworkExtractor,
    XFeatExtractor,
)
from .matchers import (
    DualSoftmax,
    LightGlueMatcher,
    Matcher,
    MutualNearestNeighbour,
    SuperGlueMatcher,
    XFeatStarMatcher,
)
from .pipeline import Pipeline
from .zoo import Zoo, ZooEntry, load_zoo

FeatureFactory = Callable[[dict[str, Any], torch.device, "Path | None"], Extractor]
MatcherFactory = Callable[[dict[str, Any], Extractor, torch.device, "Path | None"], Matcher]


def _opencv(kind: str) -> FeatureFactory:
    return lambda conf, device, wdir: OpenCVExtractor(kind, conf["max_keypoints"], device)


def _aliked(variant: str) -> FeatureFactory:
    return lambda conf, device, wdir: ALIKEDExtractor(
        variant, conf["max_keypoints"], conf["keypoint_threshold"], device=device, weights_dir=wdir
    )


def _own(kind: str) -> FeatureFactory:
    return lambda conf, device, wdir: OwnNetworkExtractor(
        kind, conf["max_keypoints"], conf["keypoint_threshold"], device=device, weights_dir=wdir
    )


FEATURES: dict[str, FeatureFactory] = {
    "sift": _opencv("sift"),
    "orb": _opencv("orb"),
    "akaze": _opencv("akaze"),
    "xfeat": lambda conf, device, wdir: XFeatExtractor(
        conf["max_keypoints"], conf["keypoint_threshold"], device=device, weights_dir=wdir
    ),
    "xfeat_dense": lambda conf, device, wdir: XFeatExtractor(
        conf["max_keypoints"], conf["keypoint_threshold"], dense=True, device=device, weights_dir=wdir
    ),
    "aliked-n16": _aliked("aliked-n16"),
    "aliked-n16rot": _aliked("aliked-n16rot"),
    "disk": lambda conf, device, wdir: DISKExtractor(
        conf["max_keypoints"], conf["keypoint_threshold"], device=device, weights_dir=wdir
    ),
    "superpoint_max": _own("superpoint"),
    "sekd": _own("sekd"),
    "alike": _own("alike-n"),
    "alike-t": _own("alike-t"),
    "alike-s": _own("alike-s"),
    "alike-l": _own("alike-l"),
}
FEATURE_KEYS = {"max_keypoints", "keypoint_threshold"}


def _lightglue(features: str) -> MatcherFactory:
    return lambda conf, extractor, device, wdir: LightGlueMatcher(
        features, **conf, device=device, weights_dir=wdir
    )


def _xfeat_star(
    conf: dict[str, Any], extractor: Extractor, device: torch.device, wdir: Path | None
) -> Matcher:
    if not isinstance(extractor, XFeatExtractor):
        raise ConfigError("the xfeat_dense matcher needs the xfeat_dense feature")
    return XFeatStarMatcher(extractor, **conf)


MATCHERS: dict[str, MatcherFactory] = {
    "NN-mutual": lambda conf, extractor, device, wdir: MutualNearestNeighbour(**conf),
    "Dual-Softmax": lambda conf, extractor, device, wdir: DualSoftmax(**conf),
    "disk-lightglue": _lightglue("disk"),
    "aliked-lightglue": _lightglue("aliked"),
    "xfeat_lightglue": _lightglue("xfeat"),
    "xfeat_dense": _xfeat_star,
    "superglue": lambda conf, extractor, device, wdir: SuperGlueMatcher(
        **conf, device=device, weights_dir=wdir
    ),
}

# Override keys accepted by `build` besides `feature_conf` / `matcher_conf`.
SETTING_KEYS = {
    "max_keypoints",
    "keypoint_threshold",
    "match_threshold",
    "enable_ransac",
    "ransac_method",
    "ransac_reproj_threshold",
    "ransac_confidence",
    "ransac_max_iter",
    "setting_geometry",
    "max_image_edge",
}


def availability(entry: ZooEntry, weights_dir: str | Path | None = None) -> tuple[bool, str]:
    """Whether ``entry`` can run here now, and if not, exactly why."""
    if entry.unavailable:
        return False, entry.unavailable
    if entry.feature not in FEATURES or entry.matcher not in MATCHERS:
        return False, f"feature {entry.feature!r} or matcher {entry.matcher!r} has no implementation"
    found = [weights.status(w, weights_dir) for w in entry.weights]
    bad = [f"{s.id} ({s.detail})" for s in found if s.state in ("bad checksum", "unreadable")]
    if bad:
        return False, f"weights exist but failed verification: {'; '.join(bad)}"
    missing = [s.id for s in found if not s.available]
    if missing:
        if any(weights.non_commercial(weights.spec_for(w)) for w in missing):
            return False, (
                f"weights missing: {', '.join(missing)}; they are under a non-commercial licence "
                f"({entry.licence.split(' (')[0]}): to accept it, run "
                f"`fm-weights fetch --accept-non-commercial {' '.join(missing)}`"
            )
        return False, f"weights missing: {', '.join(missing)}; run `fm-weights fetch {' '.join(missing)}`"
    return True, ""


def unavailable(zoo: Zoo, name: str, weights_dir: str | Path | None = None) -> str | None:
    """Why the zoo entry ``name`` cannot run here now (not in the zoo, or ``availability``), or None."""
    if name not in zoo.entries:
        return f"matcher {name!r} is not in the zoo; runnable: {', '.join(zoo.runnable())}"
    ok, why = availability(zoo[name], weights_dir)
    return None if ok else f"matcher {name!r} cannot run: {why}"


def resolve_device(device: str | torch.device) -> torch.device:
    """'auto' picks CUDA when present; an explicit 'cuda' without CUDA is a configuration error."""
    name = str(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available on this machine")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"invalid device {name!r}: {exc}") from exc


def build(
    name: str,
    overrides: dict[str, Any] | None = None,
    *,
    device: str | torch.device = "cpu",
    weights_dir: str | Path | None = None,
    zoo: Zoo | None = None,
    backend: str = "torch",
) -> Pipeline:
    """A ready pipeline for zoo entry ``name``; ``overrides`` change its settings for this call only.

    ``overrides`` takes the zoo's ``defaults`` keys plus ``max_image_edge``, and the nested
    dicts ``feature_conf`` / ``matcher_conf`` for extractor- and matcher-specific keys.
    ``backend`` runs the extractor's dense network in an inference backend (``inference/``;
    extractors without one, such as SIFT, ignore it); ``inference.status(pipeline.extractor)``
    says when torch runs instead.
    """
    inference.check_backend_name(backend)
    zoo = zoo or load_zoo()
    entry = zoo[name]
    if entry.unavailable:
        raise ZooError(f"matcher {name!r} cannot run here: {entry.unavailable}")
    overrides = dict(overrides or {})
    feature_over = dict(overrides.pop("feature_conf", {}))
    matcher_over = dict(overrides.pop("matcher_conf", {}))
    unknown = set(overrides) - SETTING_KEYS
    if unknown:
        raise ConfigError(f"unknown settings {sorted(unknown)}; valid: {sorted(SETTING_KEYS)}")
    settings = {**zoo.defaults, **overrides}

    feature_conf = {k: zoo.defaults[k] for k in FEATURE_KEYS}
    feature_conf.update(entry.feature_conf)
    feature_conf.update({k: overrides[k] for k in FEATURE_KEYS & set(overrides)})
    feature_conf.update(feature_over)
    matcher_conf = {"threshold": settings["match_threshold"]} if entry.matcher == "Dual-Softmax" else {}
    matcher_conf.update(entry.matcher_conf)
    matcher_conf.update(matcher_over)

    torch_device = resolve_device(device)
    wdir = Path(weights_dir) if weights_dir else None
    try:
        extractor = FEATURES[entry.feature](feature_conf, torch_device, wdir)
        matcher = MATCHERS[entry.matcher](matcher_conf, extractor, torch_device, wdir)
    except TypeError as exc:
        raise ConfigError(f"invalid settings for {name!r}: {exc}") from exc
    except KeyError as exc:
        raise ConfigError(f"zoo entry {name!r} names no implementation: {exc}") from exc
    if backend != "torch" and inference.supports(extractor):
        inference.attach(extractor, backend, weights_dir=wdir)
    inference.attach_matcher(matcher, backend)  # LightGlue's layers; other matchers stay as they are
    robust = RobustParams(
        method=str(settings["ransac_method"]),
        reproj_threshold=float(settings["ransac_reproj_threshold"]),
        confidence=float(settings["ransac_confidence"]),
        max_iter=int(settings["ransac_max_iter"]),
    )
    return Pipeline(
        name,
        extractor,
        matcher,
        geometry_model=str(settings["setting_geometry"]) if settings.get("enable_ransac", True) else None,
        robust=robust,
        max_image_edge=settings.get("max_image_edge"),
    )
