"""Evaluation: the homography suite, flight logs, trajectory metrics, and reports with their plots."""
