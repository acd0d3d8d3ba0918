"""The QoS the package uses: sensor inputs (camera, IMU, altimeter, priors) come in as sensor data
(best effort, newest wins), what the nodes publish goes out reliably, and a reference image is
latched for late subscribers."""

from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data

SENSOR_DATA = qos_profile_sensor_data
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)
