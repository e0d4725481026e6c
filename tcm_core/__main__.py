"""``python -m tcm_core``: the command line (``tcm_core.cli``); the ``tcm`` console script
runs the same ``main``."""

import sys

from tcm_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
