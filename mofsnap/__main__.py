"""``python -m mofsnap``: the ``mofsnap`` command line."""

import sys

from .cli import main

sys.exit(main())
