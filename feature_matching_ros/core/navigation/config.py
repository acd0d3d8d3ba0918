"""The navigator's settings: the motion and error model of its solution, and when and how it searches."""

from __future__ import annotations

from dataclasses import dataclass, field

from .revisit import RevisitConfig


@dataclass(frozen=True)
class NavigatorConfig:
    """odometry: carry the solution between fixes by keyframe odometry (else only coast);
    odometry_scale_sigma: relative scale error of an odometry displacement (its metric scale comes
    from the height above ground), and the height's drift relative to the distance flown;
    odometry_heading_sigma_deg: heading error of a displacement;
    coast_speed_sigma: m/s of position uncertainty per second without odometry, with a known
    velocity; unknown_velocity_sigma: the same while no velocity is known (after a fix that ended a
    coast, the speed itself is the uncertainty); max_speed: m/s, odometry implying more is ignored;
    map_sigma_m: horizontal accuracy of the map's georeference: the solution is tracked relative to
    the map (fixes, odometry) and this is added to the covariance it reports, since averaging fixes
    cannot remove an error the map itself has there; max_sigma_m: beyond this
    horizontal standard deviation the solution is dropped; reset_after: consecutive fixes that pass
    every other check but disagree with the prediction before the solution is dropped (it is the
    prediction that is wrong then); odometry_min_inliers: a registration with fewer homography
    inliers (the count a map fix needs) moves the solution, but its step is trusted only to its
    own length in any direction (on the real Seneca flight, a 26-inlier registration across a turn
    was 45 % long); revisit: re-localise an uncertain prediction against earlier map-fixed frames
    (``revisit``; None turns it off, as does ``odometry``, whose features it reuses);
    fix_height_sigma: relative standard deviation of a map fix's height beyond what its fit's pixel
    noise gives (the map's local scale, relief the ground plane leaves out, tilt traded for height):
    on the real Seneca flight the fits claimed 5-10 cm where the heights were 1-2 m off, 18 m at worst;
    whole_map_interval_s: a frame that neither matcher fixes around the prediction is searched again
    over the whole map (``MapLocalizer.localize_whole_map``; its fix must still agree with the
    prediction) when it came at least this long after the frame before: a survey camera's seconds
    between frames leave time for it, a video camera's frames do not (inf: never);
    whole_map_budget_s: once the frame's step has taken this long, that search tries no further
    heading or height (0: the time since the frame before, so that the step ends about when the
    next frame is due); background_search: never fall behind the camera: a frame whose search would
    end after the next frame is due (the last search around a prior took longer than the time left
    until then; a search of the whole map, without a prediction, is taken to) is searched on a
    thread of its own, and the step returns after the odometry; while that search runs, frames are
    not searched. Its fix is judged against its own frame's prediction and fused at that frame's
    stamp by a later step, which carries it to its own frame by odometry. Frames whose search fits
    between them are searched in the step, as without it. The odometry's pipeline then runs on the
    stepping thread while the search's runs on its own: give the odometry one of its own
    (``odometry_pipeline``)."""

    odometry: bool = True
    odometry_scale_sigma: float = 0.1
    odometry_heading_sigma_deg: float = 3.0
    coast_speed_sigma: float = 8.0
    unknown_velocity_sigma: float = 20.0
    max_speed: float = 60.0
    map_sigma_m: float = 1.0
    max_sigma_m: float = 300.0
    reset_after: int = 3
    odometry_keypoints: int | None = None
    odometry_min_inliers: int = 30
    revisit: RevisitConfig | None = field(default_factory=RevisitConfig)
    fix_height_sigma: float = 0.05
    whole_map_interval_s: float = 3.0
    whole_map_budget_s: float = 0.0
    background_search: bool = False
