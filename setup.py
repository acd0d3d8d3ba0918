"""Python side of the feature_matching_ros package; metadata comes from package.xml."""

import xml.etree.ElementTree as ET
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
PACKAGE_XML = ET.parse(HERE / "package.xml").getroot()
NAME = PACKAGE_XML.findtext("name")


def _files(folder: str, pattern: str) -> list[str]:
    return sorted(str(p.relative_to(HERE)) for p in (HERE / folder).glob(pattern))


setup(
    name=NAME,
    version=PACKAGE_XML.findtext("version"),
    description=PACKAGE_XML.findtext("description").strip(),
    license=PACKAGE_XML.findtext("license"),
    maintainer=PACKAGE_XML.findtext("maintainer"),
    maintainer_email=PACKAGE_XML.find("maintainer").get("email"),
    python_requires=">=3.10",
    packages=find_packages(include=[NAME, f"{NAME}.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + NAME]),
        (f"share/{NAME}", ["package.xml"]),
        (
            f"share/{NAME}/config",
            _files("config", "*.yaml") + _files("config", "*.rviz") + _files("config", "*.xml"),
        ),
        (f"share/{NAME}/launch", _files("launch", "*.py")),
    ],
    install_requires=[
        "numpy>=1.23",
        "opencv-python-headless>=4.5,<5",  # OpenCV 5 moved AKAZE out of the main modules
        "torch>=2.1,<3",
        "kornia>=0.9,<0.10",
        "poselib>=2.0",
        "pyyaml>=6",
        "rosbags>=0.10",
        "matplotlib>=3.6",
        "tqdm>=4.60",
        "pyserial>=3.4",  # nmea_output to a serial port
        "rasterio>=1.3",  # GeoTIFF maps (core/maps/geotiff.py); wheels bundle GDAL
        "pyproj>=3.4",  # and PROJ
        "pymavlink>=2.4.40",  # mavlink_bridge: GPS_INPUT, ODOMETRY (MAVLink 2)
    ],
    extras_require={
        # inference backends of the dense networks (core/matching/inference/): the dynamo ONNX export needs
        # onnx and onnxscript; tensorrt runs through an onnxruntime-gpu built with TensorRT
        "backends": ["onnx>=1.16", "onnxscript>=0.5", "onnxruntime>=1.20", "openvino>=2024.4"],
    },
    entry_points={
        "console_scripts": [
            "fm-match = feature_matching_ros.cli.match:main",
            "fm-weights = feature_matching_ros.cli.weights:main",
            "fm-bench = feature_matching_ros.cli.bench:main",
            "fm-replay = feature_matching_ros.cli.replay:main",
            "fm-record = feature_matching_ros.cli.record:main",
            "fm-navigate = feature_matching_ros.ros.runner:main",
            "fm-simulate = feature_matching_ros.cli.simulate:main",
            "fm-eval = feature_matching_ros.cli.evaluate:main",
            "fm-map = feature_matching_ros.cli.map_tool:main",
            "fm-export = feature_matching_ros.cli.export:main",
            # the node executables, as `ros2 run` finds them when installed with colcon (CMakeLists.txt)
            "feature_matcher_node = feature_matching_ros.ros.nodes.matcher_node:main",
            "geometry_node = feature_matching_ros.ros.nodes.geometry_node:main",
            "navigator_node = feature_matching_ros.ros.nodes.navigator_node:main",
            "nmea_output = feature_matching_ros.ros.nodes.nmea_output_node:main",
            "mavlink_bridge = feature_matching_ros.ros.nodes.mavlink_bridge_node:main",
        ]
    },
)
