"""The ROS 2 nodes and the parts only they use (map inputs, odometry mode, debug pictures, output base)."""
