"""`python -m s2ilib` is the same as the `s2i` console script."""

import sys

from s2ilib.cli import main

sys.exit(main())
