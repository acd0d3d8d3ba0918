"""The result table, the core-vs-direct table, and the targets they are checked against."""

from __future__ import annotations

from typing import Any

from .measure import STAGES

TOTAL_TARGETS_MS = {"xfeat(sparse)": 70.0, "aliked+lightglue": 600.0}
PEAK_RSS_TARGET_MB = 1.5 * 1024
OVERHEAD_TARGET_PCT = 10.0


def _verdict(value: float, limit: float | None) -> str:
    if limit is None:
        return ""
    return f"<= {limit:g} {'ok' if value <= limit else 'OVER'}"


def print_tables(results: list[dict[str, Any]]) -> None:
    print("median/p90 ms over the measured frames; reference features extracted once and cached")
    print(
        f"{'matcher':18} " + " ".join(f"{stage + ' ms':>13}" for stage in STAGES) + f" {'total target':17} "
        f"{'matches':>7} {'inliers':>7} {'err px':>7} {'peak RSS MiB':>12} {'RSS target':14}"
    )
    for r in results:
        if "error" in r:
            print(f"{r['matcher']:18} ERROR {r['error']}")
            continue
        cells = " ".join(f"{r[f'{s}_ms']['median']:6.1f}/{r[f'{s}_ms']['p90']:<6.1f}" for s in STAGES)
        total_verdict = _verdict(r["total_ms"]["median"], TOTAL_TARGETS_MS.get(r["matcher"]))
        print(
            f"{r['matcher']:18} {cells} {total_verdict:17} "
            f"{r['matches_median']:7.0f} {r['inliers_median']:7.0f} {r['corner_error_px_median']:7.2f} "
            f"{r['peak_rss_mb']:12.0f} {_verdict(r['peak_rss_mb'], PEAK_RSS_TARGET_MB):14}"
        )
    compared = [r for r in results if r.get("overhead") and "skipped" not in r["overhead"]]
    if not compared:
        return
    print("\ncore vs direct kornia/OpenCV calls on the same frames, interleaved; wall-clock ms, median")
    print(
        f"{'matcher':18} {'direct ms':>9} {'core ms':>9} {'overhead':>9} {'target':13} "
        f"{'matches/inliers direct':>22} {'core':>9}"
    )
    for r in compared:
        o = r["overhead"]
        print(
            f"{r['matcher']:18} {o['direct_ms']['median']:9.1f} {o['core_ms']['median']:9.1f} "
            f"{o['overhead_pct']:8.1f}% {_verdict(o['overhead_pct'], OVERHEAD_TARGET_PCT):13} "
            f"{o['direct_matches_median']:>17.0f}/{o['direct_inliers_median']:<4.0f} "
            f"{r['matches_median']:>4.0f}/{r['inliers_median']:<4.0f}"
        )
