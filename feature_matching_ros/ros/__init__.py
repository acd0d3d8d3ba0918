"""ROS 2 adapters over the core: message conversions, the nodes, the runner and the bag tools.

Everything here needs rclpy and the ROS message packages; the maths lives in ``feature_matching_ros.core``.
"""
