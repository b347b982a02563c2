"""Entry point: `python -m gate.refserver COMMAND ...`."""

from __future__ import annotations

import sys

from . import main

sys.exit(main())
