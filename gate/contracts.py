"""Values that cross module and wire boundaries, defined once: the verdicts a decision has."""

from __future__ import annotations

import typing
from typing import Literal

# grant: open; deny: stay shut; staff: stay shut, a person must check. Used by the config
# ([policy.status] values), the verifiers, the server client's parse and the fleet bus.
Verdict = Literal["grant", "deny", "staff"]
VERDICTS: tuple[Verdict, ...] = typing.get_args(Verdict)
