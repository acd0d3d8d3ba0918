"""Write simulated flights as rosbag2 with rosbags (pure Python: no ROS installation needed)."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from feature_matching_ros.core.geometry.pose import quaternion_from_matrix
from feature_matching_ros.core.simulation.flight_sim import FlightState
from feature_matching_ros.ros.infrastructure import topics

TOPICS = {
    "image": ("/" + topics.CAMERA_IMAGE, "sensor_msgs/msg/Image"),
    "info": ("/" + topics.CAMERA_INFO, "sensor_msgs/msg/CameraInfo"),
    "attitude": ("/" + topics.ATTITUDE, "sensor_msgs/msg/Imu"),
    "altitude": ("/" + topics.ALTITUDE, "sensor_msgs/msg/Range"),
    "truth": ("/" + topics.GROUND_TRUTH_POSE, "geometry_msgs/msg/PoseStamped"),
}


class FlightBagWriter:
    """One frame at a time: attitude, altitude, camera_info, ground truth, then the image."""

    def __init__(self, path: Path, storage: str = "sqlite3") -> None:
        ros2 = [s for s in Stores if s.value.startswith("ros2_")]
        self.store = get_typestore(ros2[-1])
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.writer = Writer(path, version=8, storage_plugin=plugin)
        self.writer.open()
        self.connections = {
            key: self.writer.add_connection(topic, msgtype, typestore=self.store)
            for key, (topic, msgtype) in TOPICS.items()
        }

    def _header(self, stamp_ns: int, frame_id: str) -> object:
        T = self.store.types
        time = T["builtin_interfaces/msg/Time"](sec=stamp_ns // 10**9, nanosec=stamp_ns % 10**9)
        return T["std_msgs/msg/Header"](stamp=time, frame_id=frame_id)

    def write_frame(
        self,
        stamp_ns: int,
        image: np.ndarray,
        K: np.ndarray,
        R_map_body: np.ndarray,
        height: float,
        truth: FlightState,
        options: argparse.Namespace,
    ) -> None:
        T = self.store.types
        h, w = image.shape[:2]
        vector = T["geometry_msgs/msg/Vector3"]
        q = quaternion_from_matrix(R_map_body)
        quaternion = T["geometry_msgs/msg/Quaternion"](x=q[0], y=q[1], z=q[2], w=q[3])
        sigma = np.radians(max(options.attitude_noise, 0.01))
        imu = T["sensor_msgs/msg/Imu"](
            header=self._header(stamp_ns, topics.BASE_FRAME),
            orientation=quaternion,
            orientation_covariance=np.diag([sigma**2] * 3).reshape(9),
            angular_velocity=vector(x=0.0, y=0.0, z=0.0),
            angular_velocity_covariance=np.r_[-1.0, np.zeros(8)],  # not measured
            linear_acceleration=vector(x=0.0, y=0.0, z=0.0),
            linear_acceleration_covariance=np.r_[-1.0, np.zeros(8)],
        )
        altitude = T["sensor_msgs/msg/Range"](
            header=self._header(stamp_ns, topics.BASE_FRAME),
            radiation_type=1,
            field_of_view=0.05,
            min_range=0.3,
            max_range=10000.0,
            range=height,
            variance=max(options.altitude_noise, 0.01) ** 2,
        )
        info = T["sensor_msgs/msg/CameraInfo"](
            header=self._header(stamp_ns, topics.CAMERA_OPTICAL_FRAME),
            height=h,
            width=w,
            distortion_model="plumb_bob",
            d=np.zeros(5),
            k=np.asarray(K, np.float64).reshape(9),
            r=np.eye(3).reshape(9),
            p=np.column_stack([K, np.zeros(3)]).reshape(12),
            binning_x=0,
            binning_y=0,
            roi=T["sensor_msgs/msg/RegionOfInterest"](
                x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
            ),
        )
        tq = quaternion_from_matrix(truth.R_map_body)
        p = truth.position
        pose = T["geometry_msgs/msg/Pose"](
            position=T["geometry_msgs/msg/Point"](x=p[0], y=p[1], z=p[2]),
            orientation=T["geometry_msgs/msg/Quaternion"](x=tq[0], y=tq[1], z=tq[2], w=tq[3]),
        )
        truth_msg = T["geometry_msgs/msg/PoseStamped"](
            header=self._header(stamp_ns, topics.MAP_FRAME), pose=pose
        )
        picture = T["sensor_msgs/msg/Image"](
            header=self._header(stamp_ns, topics.CAMERA_OPTICAL_FRAME),
            height=h,
            width=w,
            encoding="rgb8",
            is_bigendian=0,
            step=w * 3,
            data=np.ascontiguousarray(image, np.uint8).reshape(-1),
        )
        for key, msg in (
            ("attitude", imu),
            ("altitude", altitude),
            ("info", info),
            ("truth", truth_msg),
            ("image", picture),
        ):
            connection = self.connections[key]
            self.writer.write(connection, stamp_ns, self.store.serialize_cdr(msg, connection.msgtype))

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> FlightBagWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
