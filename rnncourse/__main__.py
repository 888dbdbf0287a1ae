"""``python -m rnncourse``: the same as the ``rnncourse`` command."""

import sys

from rnncourse.cli import main

sys.exit(main())
