"""``python -m rwmspec``: the same command line as the `rwmspec` script."""

import sys

from rwmspec.cli import main

sys.exit(main())
