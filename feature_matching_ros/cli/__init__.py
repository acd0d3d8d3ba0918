"""Command-line tools of feature_matching_ros (console scripts declared in setup.py)."""
