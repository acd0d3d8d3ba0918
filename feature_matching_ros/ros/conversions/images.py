"""sensor_msgs Image and CompressedImage to numpy and back.

``image_to_array`` gives the pixels in the message's own encoding; ``image_to_core`` and
``compressed_to_array`` give the core's convention (uint8, [H x W] grey or [H x W x 3] RGB).
Every problem with a message's content is an ``ImageError`` that says what is wrong. rclpy's
messages and rosbags' deserialised ones (whose data is a numpy array) are read alike.
"""

from __future__ import annotations

import os
import re
import sys
from array import array as _ByteArray
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image
from std_msgs.msg import Header

from feature_matching_ros.core.errors import ImageError


@dataclass(frozen=True)
class _Layout:
    dtype: str  # numpy type without byte order: "u1", "u2" or "f4"
    channels: int
    order: str  # "mono", "rgb", "bgr", "rgba" or "bgra"

    @property
    def bytes_per_pixel(self) -> int:
        return np.dtype(self.dtype).itemsize * self.channels


# 8UC1 and 8UC3 are OpenCV's names: read as mono8 and bgr8 (OpenCV's channel order).
_LAYOUTS: Mapping[str, _Layout] = MappingProxyType(
    {
        "mono8": _Layout("u1", 1, "mono"),
        "mono16": _Layout("u2", 1, "mono"),
        "rgb8": _Layout("u1", 3, "rgb"),
        "bgr8": _Layout("u1", 3, "bgr"),
        "rgba8": _Layout("u1", 4, "rgba"),
        "bgra8": _Layout("u1", 4, "bgra"),
        "16UC1": _Layout("u2", 1, "mono"),
        "32FC1": _Layout("f4", 1, "mono"),
        "8UC1": _Layout("u1", 1, "mono"),
        "8UC3": _Layout("u1", 3, "bgr"),
    }
)
SUPPORTED_ENCODINGS: tuple[str, ...] = tuple(_LAYOUTS)

_TO_RGB: Mapping[str, int] = MappingProxyType(
    {"bgr": cv2.COLOR_BGR2RGB, "rgba": cv2.COLOR_RGBA2RGB, "bgra": cv2.COLOR_BGRA2RGB}
)

_SIGNATURES: Mapping[str, bytes] = MappingProxyType({"jpeg": b"\xff\xd8\xff", "png": b"\x89PNG\r\n\x1a\n"})
_CODEC_NAMES: Mapping[str, str] = MappingProxyType({"jpeg": "jpeg", "jpg": "jpeg", "png": "png"})


def _load_cv_bridge() -> object | None:
    """ROS 2's cv_bridge, or None.

    It must be registered in the ament index of a ROS 2 prefix (``AMENT_PREFIX_PATH``, then the Python
    environment's, where the PyPI wheels install), so PyPI's ROS 1 port never counts.
    """
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p] + [sys.prefix]
    marker = Path("share", "ament_index", "resource_index", "packages", "cv_bridge")
    if not any((Path(prefix) / marker).is_file() for prefix in prefixes):
        return None
    # cv_bridge's __init__ hides a native module that fails to load, which its conversions need.
    try:
        from cv_bridge import CvBridge
        from cv_bridge.boost import cv_bridge_boost  # noqa: F401
    except (ImportError, OSError):
        return None
    return CvBridge()


_CV_BRIDGE = _load_cv_bridge()
BACKEND: str = "builtin" if _CV_BRIDGE is None else "cv_bridge"
"""The converter behind ``image_to_array``: ROS 2's cv_bridge where installed, else the builtin one."""


@dataclass(frozen=True)
class _Checked:
    buffer: np.ndarray  # the message's bytes, 1-D uint8, not copied
    encoding: str
    layout: _Layout
    height: int
    width: int
    step: int
    big_endian: bool
    in_a_buffer: bool  # msg.data has the buffer protocol (not a list or tuple of byte values)

    @property
    def shape(self) -> tuple[int, ...]:
        if self.layout.channels == 1:
            return (self.height, self.width)
        return (self.height, self.width, self.layout.channels)


def image_to_array(msg: Image) -> np.ndarray:
    """The pixels of a sensor_msgs/Image in its own encoding: uint8, uint16 or float32 [H x W (x C)].

    The builtin converter returns a view of ``msg.data`` (writing to it writes to the message),
    skipping row padding through strides; only big-endian 16- and 32-bit data is copied, to byteswap
    it. cv_bridge, where it is the backend, copies padded rows (and returns a view otherwise); it is
    given only the messages it reads correctly (is_bigendian 0, a step that is a whole number of
    pixels, data in a byte buffer rather than a list or tuple) and the builtin converter reads the rest.
    Every message is checked by the same code first, so bad ones raise the same ``ImageError``.
    """
    return _pixels(msg, _check(msg))


def image_to_array_builtin(msg: Image) -> np.ndarray:
    """``image_to_array`` by the package's own converter, whatever the backend."""
    return _view(_check(msg))


def image_to_core(msg: Image) -> np.ndarray:
    """A sensor_msgs/Image in the core's convention, C-contiguous: uint8 RGB [H x W x 3] or grey [H x W].

    Colour drops alpha and becomes RGB. 16-bit images (mono16, 16UC1) are stretched linearly from
    the image's own minimum and maximum to 0..255: thermal and depth cameras use a narrow part of
    the 16-bit range (a 14-bit sensor, a scene 20 K wide, depths of a few metres in mm), which a
    fixed shift by 8 bits would crush to a few grey levels, and matching needs local contrast, not
    absolute levels. A constant image becomes all zeros. 32FC1 is stretched the same way over its
    finite pixels; NaN and +-inf pixels (REP 117's "no return", "too close" and "too far") become 0,
    and an image without any finite pixel is an ``ImageError``. Unpadded rgb8 and mono8 come back
    as views of ``msg.data``, everything else as a new array.
    """
    checked = _check(msg)
    pixels = _pixels(msg, checked)
    layout = checked.layout
    if layout.dtype != "u1":
        return _stretch(pixels, checked.encoding)
    if layout.order in _TO_RGB:
        return cv2.cvtColor(pixels, _TO_RGB[layout.order])
    return np.ascontiguousarray(pixels)


def compressed_to_array(msg: CompressedImage) -> np.ndarray:
    """A sensor_msgs/CompressedImage (JPEG or PNG) in the core's convention: uint8 RGB or grey, C-contiguous.

    ``format`` is "jpeg", "png" or image_transport's "<encoding>; <codec> compressed <encoding>";
    when it is empty the codec is told by the data's signature. A 16-bit PNG is stretched to uint8
    as in ``image_to_core``. compressedDepth images are not supported.
    """
    fmt = _field(msg, "format", "sensor_msgs/CompressedImage")
    if not isinstance(fmt, str):
        raise ImageError(f"CompressedImage format must be a string, got {type(fmt).__name__}")
    buffer = _byte_buffer(_field(msg, "data", "sensor_msgs/CompressedImage"))
    if buffer.size == 0:
        raise ImageError(f"CompressedImage has no data (0 bytes, format {fmt!r})")
    codec, rgb_order = _parse_format(fmt, buffer)
    what = f"the {buffer.size}-byte {codec} CompressedImage"
    try:
        decoded = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    except cv2.error as exc:
        raise ImageError(f"OpenCV cannot decode {what}: {exc}") from None
    if decoded is None or decoded.size == 0:
        raise ImageError(f"cannot decode {what}: corrupt or truncated data")
    if decoded.dtype == np.uint16:
        decoded = _stretch(decoded, f"16-bit {codec}")
    elif decoded.dtype != np.uint8:
        raise ImageError(f"{what} decodes to {decoded.dtype}; expected 8- or 16-bit data")
    if decoded.ndim == 2:
        return decoded
    channels = decoded.shape[2]
    if channels == 3:
        return np.ascontiguousarray(decoded) if rgb_order else cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
    if channels == 4:
        return cv2.cvtColor(decoded, cv2.COLOR_RGBA2RGB if rgb_order else cv2.COLOR_BGRA2RGB)
    raise ImageError(f"{what} decodes to {channels} channels; expected 1, 3 or 4")


def array_to_image(array: np.ndarray, encoding: str, header: Header | None = None) -> Image:
    """A sensor_msgs/Image of ``array`` in ``encoding`` (little-endian, rows unpadded).

    The array must already be in that encoding: uint8 [H x W x 3] RGB for rgb8, uint8 [H x W] for
    mono8, uint16 for mono16 and 16UC1, float32 for 32FC1, and so on.
    """
    layout = _LAYOUTS.get(encoding) if isinstance(encoding, str) else None
    if layout is None:
        raise ImageError(_unsupported(encoding))
    if not isinstance(array, np.ndarray):
        raise ImageError(f"expected a numpy array to publish as {encoding}, got {type(array).__name__}")
    want = np.dtype(layout.dtype)
    shape = array.shape
    if layout.channels == 1 and array.ndim == 3 and shape[2] == 1:
        shape = shape[:2]
    good_shape = len(shape) == 2 if layout.channels == 1 else len(shape) == 3 and shape[2] == layout.channels
    if array.dtype.kind != want.kind or array.dtype.itemsize != want.itemsize or not good_shape:
        channels = "" if layout.channels == 1 else f" x {layout.channels}"
        raise ImageError(
            f"{encoding} needs a {want.name} [H x W{channels}] array, "
            f"got {array.dtype} of shape {array.shape}"
        )
    if shape[0] == 0 or shape[1] == 0:
        raise ImageError(f"cannot publish an empty image: {shape[1]}x{shape[0]} px")
    contiguous = np.ascontiguousarray(array, dtype=want.newbyteorder("<"))
    data = _ByteArray("B")
    data.frombytes(memoryview(contiguous).cast("B"))
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(shape[0]), int(shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(shape[1]) * layout.bytes_per_pixel
    msg.data = data
    return msg


def _field(msg: object, name: str, kind: str = "sensor_msgs/Image") -> object:
    try:
        return getattr(msg, name)
    except AttributeError:
        raise ImageError(f"expected a {kind}, got {type(msg).__name__} without a {name!r} field") from None


def _integer(msg: object, name: str) -> int:
    value = _field(msg, name)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ImageError(f"image {name} must be a non-negative integer, got {value!r}")
    return int(value)


def _byte_buffer(data: object) -> np.ndarray:
    """The bytes of ``data`` as 1-D uint8, a view where ``data`` has the buffer protocol."""
    try:
        view = memoryview(data)
    except TypeError:
        view = None
    if view is not None:
        if view.itemsize != 1 or not view.c_contiguous:
            raise ImageError(f"image data must be a contiguous byte buffer, got {type(data).__name__}")
        return np.frombuffer(view, dtype=np.uint8)
    if not isinstance(data, (list, tuple)):
        raise ImageError(f"image data must be bytes, got {type(data).__name__}")
    try:
        values = np.array(data, dtype=np.uint8)
    except (TypeError, ValueError, OverflowError):
        raise ImageError("image data must be a sequence of integers in 0..255") from None
    if values.ndim != 1:
        raise ImageError("image data must be a flat sequence of bytes")
    return values


def _unsupported(encoding: object) -> str:
    supported = ", ".join(SUPPORTED_ENCODINGS)
    if encoding == "":
        return f"image encoding is empty; supported: {supported}"
    return f"unsupported image encoding {encoding!r}; supported: {supported}"


def _check(msg: object) -> _Checked:
    encoding = _field(msg, "encoding")
    layout = _LAYOUTS.get(encoding) if isinstance(encoding, str) else None
    if layout is None:
        raise ImageError(_unsupported(encoding))
    height, width, step = _integer(msg, "height"), _integer(msg, "width"), _integer(msg, "step")
    big_endian = _field(msg, "is_bigendian")
    if isinstance(big_endian, bool) or not isinstance(big_endian, (int, np.integer)):
        raise ImageError(f"image is_bigendian must be 0 or 1, got {big_endian!r}")
    data = _field(msg, "data")
    buffer = _byte_buffer(data)
    if width == 0 or height == 0:
        raise ImageError(f"image has zero width or height: {width}x{height} px")
    bpp = layout.bytes_per_pixel
    if step < width * bpp:
        raise ImageError(
            f"image step {step} is less than width * bytes per pixel = {width} * {bpp} = {width * bpp} "
            f"for {encoding}"
        )
    if buffer.size != step * height:
        raise ImageError(
            f"image data has {buffer.size} bytes but step * height = {step} * {height} = {step * height}"
        )
    in_a_buffer = not isinstance(data, (list, tuple))
    return _Checked(buffer, encoding, layout, height, width, step, bool(big_endian), in_a_buffer)


def _view(checked: _Checked) -> np.ndarray:
    layout = checked.layout
    dtype = np.dtype(layout.dtype).newbyteorder(">" if checked.big_endian else "<")
    strides = (checked.step, layout.bytes_per_pixel, dtype.itemsize)[: len(checked.shape)]
    pixels = np.ndarray(checked.shape, dtype=dtype, buffer=checked.buffer, strides=strides)
    return pixels if pixels.dtype.isnative else pixels.astype(dtype.newbyteorder("="))


def _pixels(msg: object, checked: _Checked) -> np.ndarray:
    if _CV_BRIDGE is not None and _bridge_reads(checked):
        return _with_cv_bridge(msg, checked)
    return _view(checked)


def _bridge_reads(checked: _Checked) -> bool:
    # cv_bridge finds row starts as step // bytes_per_pixel pixels, byteswaps every big-endian image
    # (8-bit ones too) with ndarray.newbyteorder, which numpy 2 removed, and converts a list of byte
    # values element by element to the pixel type (a 16UC1 image in a list comes out wrong) and
    # refuses a tuple.
    return (
        checked.in_a_buffer and not checked.big_endian and checked.step % checked.layout.bytes_per_pixel == 0
    )


def _with_cv_bridge(msg: object, checked: _Checked) -> np.ndarray:
    try:
        pixels = _CV_BRIDGE.imgmsg_to_cv2(msg, desired_encoding="passthrough")
    except Exception as exc:  # CvBridgeError, or whatever numpy raises inside cv_bridge
        raise ImageError(f"cv_bridge cannot convert the {checked.encoding} image: {exc}") from exc
    want = np.dtype(checked.layout.dtype)
    if not isinstance(pixels, np.ndarray) or pixels.shape != checked.shape or pixels.dtype != want:
        got = f"{pixels.dtype} {pixels.shape}" if isinstance(pixels, np.ndarray) else type(pixels).__name__
        raise ImageError(
            f"cv_bridge read the {checked.encoding} image as {got}; expected {want} {checked.shape}"
        )
    return pixels


def _stretch(pixels: np.ndarray, what: str) -> np.ndarray:
    """Map the finite range of ``pixels`` linearly onto 0..255; non-finite pixels become 0."""
    finite = np.isfinite(pixels) if pixels.dtype.kind == "f" else None
    if finite is not None and not finite.any():
        raise ImageError(f"{what} image has no finite pixel: every value is NaN or inf")
    low = float(np.min(pixels, where=finite, initial=np.inf) if finite is not None else pixels.min())
    high = float(np.max(pixels, where=finite, initial=-np.inf) if finite is not None else pixels.max())
    if high == low:
        return np.zeros(pixels.shape, np.uint8)
    # float32 holds every uint16 exactly; float64 only for ranges float32 cannot hold.
    work = pixels.astype(np.float32 if high - low < 1e38 else np.float64)
    work -= low
    work *= 255.0 / (high - low)
    work += 0.5
    if finite is not None:
        work[~finite] = 0.0
    return np.ascontiguousarray(work.astype(np.uint8))


def _parse_format(fmt: str, buffer: np.ndarray) -> tuple[str, bool]:
    """The codec of a CompressedImage and whether its decoded channels are in RGB (not BGR) order."""
    words = [word for word in re.split(r"[;\s]+", fmt.strip().lower()) if word]
    head = buffer[:8].tobytes()
    if "compresseddepth" in words:
        raise ImageError(
            f"CompressedImage format {fmt!r} (compressedDepth) is not supported; supported: jpeg, png"
        )
    codecs = {_CODEC_NAMES[word] for word in words if word in _CODEC_NAMES}
    if len(codecs) > 1:
        raise ImageError(f"CompressedImage format {fmt!r} names more than one codec")
    if not codecs and words:
        raise ImageError(f"unsupported CompressedImage format {fmt!r}; supported: jpeg, png")
    if codecs:
        codec = codecs.pop()
        if not head.startswith(_SIGNATURES[codec]):
            raise ImageError(
                f"CompressedImage format {fmt!r} says {codec} but the data does not start with the "
                f"{codec} signature (first bytes {head.hex(' ')})"
            )
    else:
        found = [name for name, signature in _SIGNATURES.items() if head.startswith(signature)]
        if not found:
            raise ImageError(
                "CompressedImage has no format and its data is neither jpeg nor png "
                f"(first bytes {head.hex(' ')})"
            )
        codec = found[0]
    after = words.index("compressed") + 1 if "compressed" in words else len(words)
    rgb_order = after < len(words) and words[after].startswith("rgb")
    return codec, rgb_order
