"""Simulated flights: a procedural map (``aerial_texture``), flights and their rendering
(``flight_sim``), and a navigation map that differs from the rendered world (``map_degrade``)."""
