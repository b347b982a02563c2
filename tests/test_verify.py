"""Decisions: judge() on a credential's window and revocation, the store verifier, and the
chain that asks verifiers in order and denies what nobody knows."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from gate.verify import Decision, StoreVerifier, VerifierChain, judge
from gate.verify.credentials import LIST, SERVER, Credential, CredentialStore
from gate.verify.decision import stricter

NOW = 1_780_000_000.0


def sha(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


@pytest.mark.parametrize(("cred", "verdict", "reason"), [
    (Credential(sha("a"), label="Ann"), "grant", "ok"),
    (Credential(sha("a"), label="Ann", valid_from=NOW - 10, valid_until=NOW + 10), "grant", "ok"),
    (Credential(sha("a"), label="Ann", valid_from=NOW), "grant", "ok"),             # from is inclusive
    (Credential(sha("a"), label="Ann", valid_until=NOW), "deny", "expired"),       # until is exclusive
    (Credential(sha("a"), label="Ann", valid_until=NOW - 1), "deny", "expired"),
    (Credential(sha("a"), label="Ann", valid_from=NOW + 1), "deny", "not_yet_valid"),
    (Credential(sha("a"), label="Ann", revoked=True), "deny", "revoked"),
    (Credential(sha("a"), label="Ann", revoked=True, valid_until=NOW - 1), "deny", "revoked"),
], ids=["open", "inside", "at-from", "at-until", "after", "before", "revoked", "revoked-expired"])
def test_judge_verdicts_and_reasons(cred: Credential, verdict: str, reason: str) -> None:
    d = judge(cred, NOW, "list")
    assert (d.verdict, d.reason) == (verdict, reason)
    assert d.label == "Ann" and d.source == "list"
    assert d.granted is (verdict == "grant")


def test_judge_carries_the_credential_id_and_source() -> None:
    d = judge(Credential(sha("b"), origin=SERVER, cred_id="cred-42", label="Bo"), NOW, "cache")
    assert (d.credential_id, d.source, d.label, d.open_s) == ("cred-42", "cache", "Bo", None)


def test_decision_refuses_an_unknown_verdict() -> None:
    with pytest.raises(ValueError, match="unknown verdict"):
        Decision(verdict="open", reason="ok", source="list")  # type: ignore[arg-type]


def test_stricter_orders_deny_over_staff_over_grant() -> None:
    assert stricter("grant", "staff") == "staff" and stricter("staff", "grant") == "staff"
    assert stricter("deny", "staff") == "deny" and stricter("grant", "deny") == "deny"
    assert stricter("grant", "grant") == "grant"


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = CredentialStore(tmp_path / "credentials.db")
    s.replace(LIST, [Credential(sha("LIST-OK"), label="Lia"),
                     Credential(sha("LIST-OLD"), label="Old", valid_until=NOW - 60)])
    s.replace(SERVER, [Credential(sha("CACHE-OK"), origin=SERVER, cred_id="c1", label="Cal")])
    yield s
    s.close()


def test_store_verifier_judges_known_codes(store: CredentialStore) -> None:
    v = StoreVerifier(store, LIST, source="list")
    ok = v.check(sha("LIST-OK"), b"LIST-OK", NOW)
    old = v.check(sha("LIST-OLD"), b"LIST-OLD", NOW)
    assert ok is not None and (ok.verdict, ok.reason, ok.label, ok.source) == ("grant", "ok", "Lia", "list")
    assert old is not None and (old.verdict, old.reason) == ("deny", "expired")


def test_store_verifier_returns_none_for_unknown_codes(store: CredentialStore) -> None:
    v = StoreVerifier(store, LIST, source="list")
    assert v.check(sha("NOBODY"), b"NOBODY", NOW) is None
    assert v.check(sha("CACHE-OK"), b"CACHE-OK", NOW) is None  # another origin's code


class Fixed:
    """A verifier with a set answer that records that it was asked."""

    def __init__(self, name: str, answer: Decision | None, asked: list[str]) -> None:
        self.name, self.answer, self.asked = name, answer, asked

    def check(self, code_sha256: str, code: bytes, now: float) -> Decision | None:
        self.asked.append(self.name)
        return self.answer


def test_chain_first_verifier_that_knows_decides_and_later_ones_are_not_asked() -> None:
    asked: list[str] = []
    staff = Decision(verdict="staff", reason="status_yellow", source="server")
    grant = Decision(verdict="grant", reason="ok", source="list")
    chain = VerifierChain([Fixed("server", None, asked), Fixed("cache", staff, asked),
                           Fixed("list", grant, asked)])
    assert chain.check(sha("x"), b"x", NOW) is staff
    assert asked == ["server", "cache"]


def test_chain_nobody_knows_the_code_denies_as_unknown_from_none() -> None:
    asked: list[str] = []
    chain = VerifierChain([Fixed("a", None, asked), Fixed("b", None, asked)])
    d = chain.check(sha("x"), b"x", NOW)
    assert (d.verdict, d.reason, d.source, d.label) == ("deny", "unknown", "none", "")
    assert asked == ["a", "b"]
    empty = VerifierChain([]).check(sha("x"), b"x", NOW)
    assert (empty.verdict, empty.reason, empty.source) == ("deny", "unknown", "none")


def test_chain_over_the_real_store_cache_then_list(store: CredentialStore) -> None:
    chain = VerifierChain([StoreVerifier(store, SERVER, source="cache"),
                           StoreVerifier(store, LIST, source="list")])
    cached = chain.check(sha("CACHE-OK"), b"CACHE-OK", NOW)
    listed = chain.check(sha("LIST-OK"), b"LIST-OK", NOW)
    unknown = chain.check(sha("NOBODY"), b"NOBODY", NOW)
    assert (cached.source, cached.verdict, cached.credential_id) == ("cache", "grant", "c1")
    assert (listed.source, listed.verdict) == ("list", "grant")
    assert (unknown.source, unknown.reason, unknown.verdict) == ("none", "unknown", "deny")
