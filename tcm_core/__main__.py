import sys

from tcm_core.cli import main

sys.exit(main())
