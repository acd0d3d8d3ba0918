"""Visual navigation for aircraft from learned keypoint matching, as a ROS 2 package.

``feature_matching_ros.core`` is the ROS-free library; ``feature_matching_ros.msg`` holds the
generated ROS interfaces, which may be installed in another directory of ``sys.path`` (a
message build in a virtual environment beside an editable source checkout), hence the
extended package path.
"""

from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
__version__ = "0.1.0"
