"""``python -m fer_ray``: the ``fer-ray`` command (``fer_ray.cli``)."""

import sys

from fer_ray.cli import main

if __name__ == "__main__":
    sys.exit(main())
