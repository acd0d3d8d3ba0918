"""Conversions between ROS messages and the core's types: images, cameras, aids, match and pose messages."""
