"""The one exception of the pass format: a reason word for the journal plus a detail."""

from __future__ import annotations

from ..errors import GateError


class PassError(GateError, ValueError):
    """A pass that cannot be accepted. ``reason`` is the journal's word (bad_format,
    unknown_key, bad_signature, ...); ``detail`` says what exactly, never with the payload."""

    def __init__(self, reason: str, detail: str, pass_id: str | None = None) -> None:
        self.reason = reason
        self.detail = detail
        self.pass_id = pass_id  # set once the signature held: only then is the id believable
        super().__init__(f"{reason}: {detail}")
