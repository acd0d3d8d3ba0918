"""What the map search is configured by, starts from and returns: ``SearchConfig``, the position
``Prior`` and the ``MapMatch`` of one frame."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..maps.features import Window
from .verify import Agreement


@dataclass(frozen=True)
class SearchConfig:
    """margin_m: search radius around a fresh prior; max_speed: m/s, grows the radius with time;
    widen: factor per failed frame; heading_hypotheses: headings tried without a usable attitude;
    default_height: metres above ground when neither a measurement nor a prior gives one (0: none);
    height_hypotheses: heights tried when not even ``default_height`` is set (the fix then measures
    the height itself); map_upsample: search-grid pixels per map pixel (1: match at map resolution;
    0: chosen per frame by ``MapSearch.grid_scale`` from the camera's ground sample distance);
    sweep_overlap: fraction by which windows of the global sweep overlap; refine: replace the
    feature matches by sub-pixel direct alignment (``map_refine``) once they give a homography;
    equalize: stretch the frame's local contrast (CLAHE) before extraction, so haze, dusk or
    overexposure leave the detector enough contrast to find keypoints; guided: around a prior with
    a heading and at most ``guided_max_sigma_m``, match each frame keypoint only to map keypoints within three
    sigma plus ``guided_margin_m`` (unknown tilt and heading) of where the prior puts it (``guided``
    module; float descriptors with a nearest-neighbour matcher only); verify: drop the matches
    unless the map seen through their homography correlates with the whole frame at least
    ``min_agreement`` and ``min_peak`` times better than a few metres off (``map_verify``): the
    inliers of a wrong match agree with each other by construction, the rest of the frame does not;
    correlate: when keypoints find too little around a prior with a heading and at most
    ``correlate_max_sigma_m``, place the frame by gradient correlation (``map_correlate``, at least
    ``correlate_min_ratio`` times better than ``correlate_exclusion_m`` away) and take the
    correspondences from direct alignment; only where the caller asks for it, since such a match
    must be confirmed by a navigation prediction (``MapMatch.from_prior``); acquire: without a
    prior, with a measured attitude and a known height, where the keypoint sweep finds nothing,
    place the frame by gradient correlation over the whole map (maps up to ``acquire_max_mpx``
    megapixels), at least ``acquire_min_ratio`` times better than anywhere else, and match there
    once the next frame's placement confirms it (``map_correlate.Acquisition``); tilted_retry: where
    the search used only the prior's heading and the prior carries a tilt (a fix's, carried by
    odometry), one more candidate: the frame rectified by that tilt (see ``candidates``)."""

    margin_m: float = 40.0
    max_speed: float = 40.0
    widen: float = 2.0
    heading_hypotheses: int = 4
    default_height: float = 0.0
    height_hypotheses: tuple[float, ...] = (60.0, 150.0, 400.0)
    map_upsample: float = 0.0
    sweep_overlap: float = 0.5
    min_matches: int = 12
    refine: bool = True
    equalize: bool = True
    guided: bool = True
    guided_margin_m: float = 25.0
    guided_max_sigma_m: float = 30.0
    verify: bool = True
    min_agreement: float = 0.2
    min_peak: float = 1.1
    correlate: bool = True
    correlate_max_sigma_m: float = 10.0
    correlate_min_ratio: float = 1.5
    correlate_exclusion_m: float = 8.0
    acquire: bool = True
    acquire_min_ratio: float = 2.0
    acquire_max_mpx: float = 4.0
    tilted_retry: bool = True


@dataclass(frozen=True)
class Prior:
    """A horizontal position (map metres) known at ``stamp`` (s) with ``sigma`` (m) uncertainty,
    optionally with attitude (R_map_body; its heading a mere guess unless ``heading_known``) and
    height above ground (m)."""

    stamp: float
    position: np.ndarray
    sigma: float = 0.0
    R_map_body: np.ndarray | None = None
    height: float | None = None
    heading_known: bool = True  # False: R_map_body's heading is only a guess (after a turn)

    def __post_init__(self) -> None:
        position = np.asarray(self.position, np.float64).reshape(-1)
        if position.size < 2 or not np.isfinite(position[:2]).all():
            raise ValueError(f"a position prior needs a finite horizontal position, got {self.position}")
        if not (math.isfinite(self.sigma) and self.sigma >= 0.0) or not math.isfinite(self.stamp):
            raise ValueError(f"a position prior needs a finite stamp and sigma >= 0, got {self.sigma}")
        if self.R_map_body is not None and not np.isfinite(self.R_map_body).all():
            raise ValueError("a position prior's attitude must be finite")
        if self.height is not None and not (math.isfinite(self.height) and self.height > 0):
            raise ValueError(f"a position prior's height must be positive, got {self.height}")
        object.__setattr__(self, "position", position[:2].copy())


@dataclass(frozen=True, eq=False)
class MapMatch:
    """Correspondences between the map and one frame.

    map_points: [M x 2] map pixels; image_points: [M x 2] pixels of the original frame;
    scores: [M]; window: the map box searched (the best one of a sweep); strategy: "prior",
    "sweep" or the reason nothing was matched when ``map_points`` is empty; from_prior: the
    correspondences were placed by correlation around the prior, not matched (a fix built on them
    is no evidence independent of the prior).
    """

    map_points: np.ndarray
    image_points: np.ndarray
    scores: np.ndarray
    window: Window | None
    strategy: str
    num_map_keypoints: int = 0
    num_frame_keypoints: int = 0
    times_ms: dict[str, float] = field(default_factory=dict)
    support: int = 0  # inliers of a quick homography: how hypotheses and windows are ranked
    agreement: Agreement | None = None  # the map seen through the matches vs the frame (map_verify)
    from_prior: bool = False

    def __len__(self) -> int:
        return len(self.map_points)
