"""Map navigation: rectification, the map search, placement, fix checks, the localizer and the continuous
navigator."""
