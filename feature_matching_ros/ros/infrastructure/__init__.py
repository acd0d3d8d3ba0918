"""What every node stands on: parameters and their checks, diagnostics, topics, QoS/DDS, synchronisation,
workers."""
