"""The typed contracts: reasons and sources defined once, checked where the gate makes them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gate.central.client import parse_verify
from gate.contracts import REASONS, SOURCES, is_reason, status_reason
from gate.verify.decision import Decision

GATE = Path(__file__).resolve().parent.parent / "gate"


def test_status_reasons_follow_the_pattern() -> None:
    assert status_reason("red") == "status_red" and is_reason("status_red")
    assert not is_reason("status_") and not is_reason("whatever") and is_reason("locked_out")


def test_a_local_decision_with_an_unknown_reason_or_source_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown reason"):
        Decision(verdict="deny", reason="typo", source="list")
    with pytest.raises(ValueError, match="unknown source"):
        Decision(verdict="deny", reason="unknown", source="elsewhere")  # type: ignore[arg-type]


def test_a_server_reason_is_kept_as_the_server_wrote_it() -> None:
    """The journal must show what the server said, even a word the gate does not know."""
    answer = parse_verify({"decision": "deny", "reason": "membership_lapsed"})
    decision = Decision(verdict=answer.decision, reason=answer.reason, source="server")
    assert decision.reason == "membership_lapsed"


def test_every_reason_and_source_literal_in_the_code_is_declared() -> None:
    """A reason= or source= word written in gate/ (outside the reference server) is one of
    the contracts' values, so a new word cannot slip in undeclared."""
    seen: set[tuple[str, str]] = set()
    for path in GATE.rglob("*.py"):
        if "refserver" in path.parts:
            continue
        for field, word in re.findall(r'\b(reason|source)="([a-z_]+)"', path.read_text()):
            seen.add((field, word))
    assert ("reason", "lockdown") in seen and ("source", "none") in seen  # the scan works
    for field, word in sorted(seen):
        if field == "reason":
            assert word in REASONS or word in {"relay_fault"}, word  # relay_fault: a stop
        else:
            assert word in SOURCES or word == "test-relay", word  # test-relay: a door event
