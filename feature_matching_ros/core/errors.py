"""Errors raised by the core. Every one carries a message meant for the operator."""


class FeatureMatchingError(Exception):
    """Base class of every error the core raises on purpose."""


class ImageError(FeatureMatchingError):
    """An image is missing, unreadable, empty or of an unsupported type."""


class WeightsError(FeatureMatchingError):
    """A weight file cannot be found, fetched, verified or loaded."""


class ZooError(FeatureMatchingError):
    """A zoo name is unknown, or its entry cannot run here."""


class ConfigError(FeatureMatchingError):
    """A configuration value is missing or out of range."""


class TerrainError(FeatureMatchingError):
    """An elevation model does not cover the map, or has no data where a height is needed."""
