"""`python -m gate_server` is the `gate-server` command."""

import sys

from .cli import main

sys.exit(main())
