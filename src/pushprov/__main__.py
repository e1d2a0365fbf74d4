"""``python -m pushprov``: the same as the ``pushprov`` command."""

import sys

from .cli import main

sys.exit(main())
