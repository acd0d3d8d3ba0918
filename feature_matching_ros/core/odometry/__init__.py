"""Keyframe odometry over flat ground: the keyframe tracker, its registrations, and optical flow between
keyframes."""
