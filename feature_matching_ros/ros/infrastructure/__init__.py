"""What every node stands on: diagnostics, topics, QoS/DDS, synchronisation, workers (the parameters are
in ``ros.params``)."""
