"""``python -m feature_matching_ros.cli.bench``: how the parent starts each worker process."""

import sys

from .command import main

if __name__ == "__main__":
    sys.exit(main())
