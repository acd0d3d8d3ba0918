"""The parameter spec, and declaring and checking a node's table of specs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from feature_matching_ros.core.errors import ConfigError


@dataclass(frozen=True)
class ParamSpec:
    name: str
    default: Any
    description: str
    choices: tuple[str, ...] = ()
    range: tuple[float, float] | None = None  # inclusive; ints for integer parameters
    read_only: bool = False
    min_nonzero: float | None = None  # 0 means off; any other value must be at least this

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not acceptable, or None."""
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {', '.join(self.choices)}; got {value!r}"
        if self.range is not None and not (self.range[0] <= value <= self.range[1]):
            return f"{self.name} must be within [{self.range[0]}, {self.range[1]}]; got {value!r}"
        if self.min_nonzero is not None and value != 0 and value < self.min_nonzero:
            return f"{self.name} must be 0 (off) or at least {self.min_nonzero}; got {value!r}"
        return None


# Parameters rclpy declares itself or reads from overrides (QoS overrides, sim time).
BUILTIN = {"use_sim_time", "start_type_description_service"}


def declare(node: Any, specs: tuple[ParamSpec, ...]) -> None:
    """Declare ``specs`` on an rclpy node with descriptors (description, choices, ranges, read-only)."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException

    for spec in specs:
        text = spec.description + (f" (one of: {', '.join(spec.choices)})" if spec.choices else "")
        descriptor = ParameterDescriptor(description=text, read_only=spec.read_only)
        if spec.range is not None and isinstance(spec.default, bool) is False:
            low, high = spec.range
            if isinstance(spec.default, int):
                descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=0)]
            else:
                descriptor.floating_point_range = [
                    FloatingPointRange(from_value=float(low), to_value=float(high), step=0.0)
                ]
        try:
            node.declare_parameter(spec.name, spec.default, descriptor)
        except (InvalidParameterTypeException, InvalidParameterValueException) as exc:
            raise ConfigError(f"{node.get_name()}: parameter {spec.name}: {exc}") from None
    # rclpy keeps values for undeclared names silently: a typo in a params file would go unnoticed.
    unknown = sorted(set(getattr(node, "_parameter_overrides", {})) - {s.name for s in specs} - BUILTIN)
    # A warning, not an error: wildcard sections and global -p arguments reach every node of a process.
    if unknown:
        node.get_logger().warning(
            f"ignoring unknown parameters {unknown}; valid: {sorted(s.name for s in specs)}"
        )
    reason = check_all(specs, {s.name: node.get_parameter(s.name).value for s in specs})
    if reason:
        raise ConfigError(f"{node.get_name()}: {reason}")


def check_all(specs: tuple[ParamSpec, ...], values: dict[str, Any]) -> str | None:
    """The first reason a set of values is unacceptable (unknown names included), or None."""
    by_name = {s.name: s for s in specs}
    for name, value in values.items():
        spec = by_name.get(name)
        if spec is None:
            return f"unknown parameter {name!r}"
        reason = spec.check(value)
        if reason:
            return reason
    return None
