"""rosbag2: recording and replay, flights read for evaluation, and lockstep playback through the nodes."""
