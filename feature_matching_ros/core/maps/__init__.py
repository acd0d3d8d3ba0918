"""Georeferenced maps: GeoTIFF and PNG georeference, windowed rasters, terrain, tiled map features and their
disk cache."""
