"""Every topic and frame name the package uses, relative so that namespaces and remapping apply."""

CAMERA_IMAGE = "camera/image_raw"
CAMERA_IMAGE_COMPRESSED = "camera/image_raw/compressed"
CAMERA_INFO = "camera/camera_info"
REFERENCE_IMAGE = "reference/image"

MATCHES = "matches"
GEOMETRY = "geometry"
POSE = "pose"
DEBUG_MATCHES = "debug/matches"
DEBUG_OVERLAY = "debug/overlay"
DIAGNOSTICS = "/diagnostics"
CLOCK = "/clock"

# Frames (REP 103 / REP 105): images are in a camera optical frame (x right, y down, z forward).
CAMERA_OPTICAL_FRAME = "camera_optical"
REFERENCE_FRAME = "reference_optical"

# Published by the navigation layer (georeferenced pose history and map markers), shown in RViz.
PATH = "path"
MARKERS = "markers"

# Navigation inputs: attitude (sensor_msgs/Imu, or geometry_msgs/QuaternionStamped by parameter),
# height above ground (sensor_msgs/Range), optional position priors, and a simulator's ground truth.
ATTITUDE = "imu/data"
ALTITUDE = "altitude"
PRIOR_ODOMETRY = "prior/odometry"
PRIOR_FIX = "prior/fix"
GROUND_TRUTH_POSE = "ground_truth/pose"

# Navigation outputs besides POSE and PATH.
FIX = "fix"
ODOMETRY = "odometry"
VELOCITY = "velocity"  # geometry_msgs/TwistWithCovarianceStamped, map frame (ENU)

MAP_FRAME = "map"
ODOM_FRAME = "odom"
BASE_FRAME = "base_link"
