"""Simulated flights: a procedural map (``aerial_texture``), flights and their rendering
(``flight_sim``), a navigation map that differs from the rendered world (``map_degrade``), and
synthetic image pairs for warm-ups and the homography suite (``synthetic``)."""
