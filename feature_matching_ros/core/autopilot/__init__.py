"""What an autopilot reads: NMEA sentences and MAVLink messages built from the navigation solution."""
