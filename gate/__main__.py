"""`python -m gate` is the `gate` command."""

import sys

from .cli import main

sys.exit(main())
