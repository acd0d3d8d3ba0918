"""The manifest: its entries, the shared mirror's copies, the licence table."""

from __future__ import annotations

import re

from feature_matching_ros.core.matching import weights


def test_manifest_is_complete_and_consistent():
    assert list(weights.MANIFEST) == [
        "xfeat",
        "xfeat-lighterglue",
        "aliked-n16",
        "aliked-n16rot",
        "aliked-n32",
        "aliked-t16",
        "aliked-lightglue",
        "disk-depth",
        "disk-lightglue",
        "superpoint-v1",
        "superglue-outdoor",
        "superglue-indoor",
        "sekd",
        "alike-t",
        "alike-s",
        "alike-n",
        "alike-l",
    ]
    for weight_id, spec in weights.MANIFEST.items():
        assert spec.id == weight_id
        assert re.fullmatch(r"[0-9a-f]{64}", spec.sha256)
        assert spec.size > 100_000
        assert spec.licence in {"Apache-2.0", "BSD-3-Clause", "MIT", weights.MAGIC_LEAP_LICENCE}
        assert spec.url.startswith("https://github.com/")
        if spec.carrier:
            assert re.fullmatch(r"scm-(xfeat==0\.1\.4|lightglue==0\.2\.9)|imcui==0\.0\.5", spec.carrier)
            assert spec.member.rsplit("/", 1)[1] == spec.file_name
        else:  # only in the authors' git repositories
            assert weight_id in {"sekd", "alike-t", "alike-s", "alike-n", "alike-l"} and not spec.member
        assert weights.non_commercial(spec) == (spec.carrier == "imcui==0.0.5")


def test_the_shared_mirror_matches_the_manifest(shared_data):
    """The test machines' copies of the git-only files are the manifest's (their SHA256SUMS too)."""
    mirror = shared_data.parent / "weights"
    sums = dict(line.split()[::-1] for line in (mirror / "SHA256SUMS").read_text().splitlines() if line)
    for weight_id in ("sekd", "alike-t", "alike-s", "alike-n", "alike-l"):
        spec = weights.MANIFEST[weight_id]
        assert sums[spec.file_name] == spec.sha256
        assert weights.check_file(mirror / spec.file_name, spec) is None


def test_licence_table_lists_every_weight():
    table = weights.weights_licence_table()
    lines = table.splitlines()
    assert lines[0].startswith("| id | file |")
    assert len(lines) == 2 + len(weights.MANIFEST)
    for spec in weights.MANIFEST.values():
        assert f"`{spec.id}`" in table and spec.url in table and spec.carrier in table
