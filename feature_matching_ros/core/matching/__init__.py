"""Keypoint matching: the zoo and its registry, weights, extractors, matchers, the extract-match-geometry
pipeline, inference backends and match pictures."""
