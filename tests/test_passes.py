"""Signed passes: issue and verify with real Ed25519 keys, every deny reason in its order,
the schedule across midnight, DST and two time zones, and the rotating code's window."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import cbor2
import pytest

from gate.passes import code_at, issue, pass_secret
from gate.passes.rotation import STEP_S
from gate.verify import StoreVerifier, VerifierChain
from gate.verify.credentials import LIST, CredentialStore
from gate.verify.passes import PassDecision
from tests.support.passhelpers import (
    BERLIN,
    DAY,
    OTHER,
    SIGNER,
    SITE_KEY,
    WEEKDAYS,
    T,
    Window,
    claims,
    cose,
    make_key,
    pass_key,
    text_of,
    verifier,
)


def reason(tmp_path: Path, text: str, now: float = T, **kw: object) -> str:
    d = verifier(tmp_path, **kw).decide(text, now)  # type: ignore[arg-type]
    assert d.source == "pass"
    return d.reason if d.verdict == "deny" else "grant"


def test_pass_grant_names_the_pass_and_not_the_payload(tmp_path: Path) -> None:
    text = issue(claims(), SIGNER)
    d = verifier(tmp_path).verify(text)
    assert isinstance(d, PassDecision)
    assert (d.verdict, d.reason, d.source, d.label) == ("grant", "ok", "pass", "visitor pass")
    assert d.pass_id == "a1b2c3d4e5f6" and text not in repr(d)


def test_pass_static_part_fits_version_9_at_q() -> None:
    for kind in ("staff", "visitor", "contractor"):
        for schedule in ((), (Window(WEEKDAYS, 480, 1080),)):
            text = issue(claims(kind=kind, schedule=schedule), SIGNER)
            assert len(text) <= 180, (kind, schedule, len(text))
    assert len(issue(claims(rotating=True), SIGNER)) + 9 <= 180
    # what gate-server issues (5-byte id, no start claim), rotating with a schedule
    sched = claims(pass_id=b"12345", valid_from=None, rotating=True,
                   schedule=(Window(WEEKDAYS, 480, 1080),))
    assert len(issue(sched, SIGNER)) + 9 <= 180


def test_pass_not_gp1_is_not_the_pass_verifiers_business(tmp_path: Path) -> None:
    v = verifier(tmp_path)
    assert v.check("0" * 64, b"DEMO-ALICE-0001", T) is None
    assert v.verify("gp1:lowercase") is None
    store = CredentialStore(tmp_path / "cred.db")
    chain = VerifierChain([v, StoreVerifier(store, LIST, source="list")])
    assert chain.check("0" * 64, b"DEMO-ALICE-0001", T).source == "none"
    assert chain.check("0" * 64, issue(claims(), SIGNER).encode(), T).source == "pass"


def test_pass_flipped_signature_byte_is_bad_signature(tmp_path: Path) -> None:
    raw = cose(issue(claims(), SIGNER))
    for i in (len(raw) - 64, len(raw) - 30, len(raw) - 1):
        bad = bytearray(raw)
        bad[i] ^= 0x01
        assert reason(tmp_path, text_of(bad)) == "bad_signature"


def test_pass_flipped_payload_byte_is_bad_signature(tmp_path: Path) -> None:
    raw = cose(issue(claims(), SIGNER))
    start = 14                       # 84 | 49 + 9 header bytes | A0 | 58 len | payload
    length = raw[13]
    for i in range(start, start + length):
        bad = bytearray(raw)
        bad[i] ^= 0x04
        assert reason(tmp_path, text_of(bad)) == "bad_signature", i


def test_pass_flipped_header_byte_is_format_or_unknown_key(tmp_path: Path) -> None:
    """Header bytes are checked before the signature: a flipped alg is bad_format, a
    flipped kid names no key (unknown_key), a flipped structure byte is bad_format."""
    raw = cose(issue(claims(), SIGNER))
    seen = {}
    for i in range(2, 11):           # the protected header's 9 bytes: A2 01 27 04 44 kid*4
        bad = bytearray(raw)
        bad[i] ^= 0x01
        seen[i] = reason(tmp_path, text_of(bad))
    assert seen[4] == "bad_format"   # alg -8 -> -7
    assert all(seen[i] == "unknown_key" for i in range(7, 11))
    assert set(seen.values()) <= {"bad_format", "unknown_key"}


def test_pass_signed_by_a_known_key_under_another_kid_is_bad_signature(tmp_path: Path) -> None:
    raw = cose(issue(claims(), SIGNER))
    raw[7:11] = pass_key(OTHER).kid  # the header now names OTHER, the signature is SIGNER's
    keys = (pass_key(SIGNER), pass_key(OTHER))
    assert reason(tmp_path, text_of(raw), keys=keys) == "bad_signature"


def test_pass_unknown_kid(tmp_path: Path) -> None:
    assert reason(tmp_path, issue(claims(), make_key(9))) == "unknown_key"


def test_pass_key_rotation_old_key_keeps_verifying_its_own_passes(tmp_path: Path) -> None:
    cut = T - 10 * DAY
    keys = (pass_key(SIGNER, 0, cut), pass_key(OTHER, cut))
    old = issue(claims(valid_from=cut - DAY, valid_until=T + DAY), SIGNER)
    new = issue(claims(), OTHER)
    assert reason(tmp_path, old, keys=keys) == "grant"
    assert reason(tmp_path, new, keys=keys) == "grant"
    # the retired key cannot sign a pass that starts after it left service
    assert reason(tmp_path, issue(claims(), SIGNER), keys=keys) == "unknown_key"
    assert reason(tmp_path, issue(claims(valid_from=cut - DAY), OTHER), keys=keys) == "unknown_key"


def test_pass_keys_stale_after_max_key_age(tmp_path: Path) -> None:
    text = issue(claims(), SIGNER)
    assert reason(tmp_path, text, synced_at=T - 100, max_key_age_s=100) == "grant"
    assert reason(tmp_path, text, synced_at=T - 101, max_key_age_s=100) == "keys_stale"
    assert reason(tmp_path, text, synced_at=None, max_key_age_s=100) == "grant"  # a file
    assert reason(tmp_path, text, synced_at=T - 10**6, max_key_age_s=0) == "grant"


@pytest.mark.parametrize(("now", "want"), [
    (T - DAY - 1, "not_yet_valid"), (T - DAY, "grant"), (T + DAY - 1, "grant"),
    (T + DAY, "expired"), (float("nan"), "clock_invalid"), (-5.0, "clock_invalid"),
])
def test_pass_validity_window(tmp_path: Path, now: float, want: str) -> None:
    assert reason(tmp_path, issue(claims(), SIGNER), now=now) == want


def test_pass_site(tmp_path: Path) -> None:
    assert reason(tmp_path, issue(claims(sites=("annex",)), SIGNER)) == "wrong_site"
    assert reason(tmp_path, issue(claims(sites=("annex", "hq")), SIGNER)) == "grant"
    assert reason(tmp_path, issue(claims(), SIGNER), site="HQ") == "wrong_site"


def test_pass_checks_in_order(tmp_path: Path) -> None:
    """Expired and wrong site and revoked: the first in the documented order wins."""
    v = verifier(tmp_path)
    c = claims(sites=("annex",))
    v.revocations.replace([c.pass_id], "c1")
    assert v.decide(issue(c, SIGNER), T + 2 * DAY).reason == "expired"
    assert v.decide(issue(c, SIGNER), T).reason == "wrong_site"
    assert v.decide(issue(claims(), SIGNER), T).reason == "revoked"


def local(tz: ZoneInfo, *args: int) -> float:
    return datetime(*args, tzinfo=tz).timestamp()  # type: ignore[misc]


@pytest.mark.parametrize("tz", [ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York")])
def test_pass_schedule_across_midnight_in_the_sites_zone(tmp_path: Path, tz: ZoneInfo) -> None:
    night = (Window(0b0010000, 22 * 60, 6 * 60),)   # Friday 22:00 to Saturday 06:00
    text = issue(claims(schedule=night, valid_from=T - 30 * DAY, valid_until=T + 30 * DAY),
                 SIGNER)
    cases = [((2026, 6, 5, 21, 59), "outside_schedule"), ((2026, 6, 5, 22, 0), "grant"),
             ((2026, 6, 6, 3, 0), "grant"), ((2026, 6, 6, 5, 59), "grant"),
             ((2026, 6, 6, 6, 0), "outside_schedule"), ((2026, 6, 6, 22, 30), "outside_schedule"),
             ((2026, 6, 4, 23, 0), "outside_schedule"), ((2026, 6, 5, 3, 0), "outside_schedule")]
    for when, want in cases:
        assert reason(tmp_path, text, now=local(tz, *when), tz=tz) == want, when
    # one instant, two sites: Saturday 03:00 in Berlin is Friday 21:00 in New York
    instant = local(BERLIN, 2026, 6, 6, 3, 0)
    assert reason(tmp_path, text, now=instant, tz=BERLIN) == "grant"
    assert reason(tmp_path, text, now=instant, tz=ZoneInfo("America/New_York")) \
        == "outside_schedule"


def test_pass_schedule_follows_the_wall_clock_across_dst(tmp_path: Path) -> None:
    mornings = (Window(0x7F, 8 * 60, 9 * 60),)
    text = issue(claims(schedule=mornings, valid_from=T - 200 * DAY, valid_until=T + 200 * DAY),
                 SIGNER)
    # 08:30 in Berlin is 07:30 UTC in winter and 06:30 UTC in summer: open both times
    for when in ((2026, 3, 28, 8, 30), (2026, 3, 29, 8, 30), (2026, 10, 24, 8, 30),
                 (2026, 10, 25, 8, 30)):
        assert reason(tmp_path, text, now=local(BERLIN, *when)) == "grant", when
    summer_0730_utc = datetime(2026, 3, 29, 7, 30, tzinfo=ZoneInfo("UTC")).timestamp()
    assert reason(tmp_path, text, now=summer_0730_utc) == "outside_schedule"  # 09:30 local


def rotating_text(c: object = None) -> tuple[str, bytes]:
    cl = claims(rotating=True)
    return issue(cl, SIGNER), pass_secret(SITE_KEY, cl.pass_id)


@pytest.mark.parametrize("window", [0, 1, 2])
def test_pass_rotation_window_boundaries(tmp_path: Path, window: int) -> None:
    static, secret = rotating_text()
    now = (T // STEP_S) * STEP_S + 7
    for steps in range(-window - 1, window + 2):
        shown = static + "*" + code_at(secret, now + steps * STEP_S)
        want = "grant" if abs(steps) <= window else "stale_code"
        assert reason(tmp_path, shown, now=now, rotation_window_steps=window) == want, steps


def test_pass_rotation_refusals(tmp_path: Path) -> None:
    static, secret = rotating_text()
    assert reason(tmp_path, static) == "stale_code"                      # a screenshot of the QR
    assert reason(tmp_path, static + "*" + "0" * 8) == "stale_code"
    other = pass_secret(b"x" * 32, claims().pass_id)                     # another site's key
    assert reason(tmp_path, static + "*" + code_at(other, T)) == "stale_code"
    plain = issue(claims(), SIGNER)
    assert reason(tmp_path, plain + "*" + code_at(secret, T)) == "bad_format"
    annex = issue(claims(rotating=True, sites=("annex", "hq")), SIGNER)  # home site annex
    assert reason(tmp_path, annex + "*" + code_at(secret, T)) == "unknown_key"


def test_pass_rotation_code_is_rfc6238_sha256() -> None:
    # RFC 6238 appendix B, SHA-256 seed, T = 59 s and 1111111109 s
    seed = b"12345678901234567890123456789012"
    assert code_at(seed, 59) == "46119246"
    assert code_at(seed, 1111111109) == "68084774"


def test_pass_revoked_and_unrevoked(tmp_path: Path) -> None:
    v = verifier(tmp_path)
    c = claims()
    text = issue(c, SIGNER)
    v.revocations.update([c.pass_id], [], "c1")
    assert v.decide(text, T).reason == "revoked"
    v.revocations.update([], [c.pass_id], "c2")
    assert v.decide(text, T).verdict == "grant"


@pytest.mark.parametrize(("mutate", "detail"), [
    (lambda m: [m[0], {1: -8, 4: m[4]}, m[2], m[3]], "unprotected"),
    (lambda m: [cbor2.dumps({1: -7, 4: m[4]}), {}, m[2], m[3]], "alg"),
    (lambda m: [cbor2.dumps({1: -8, 4: m[4], 2: [99]}), {}, m[2], m[3]], "critical"),
    (lambda m: [cbor2.dumps({1: -8, 4: m[4], 99: 1}), {}, m[2], m[3]], "exactly"),
    (lambda m: [cbor2.dumps({4: m[4], 1: -8}), {}, m[2], m[3]], "canonical"),
    (lambda m: [m[0], {}, m[2]], "array of four"),
    (lambda m: cbor2.CBORTag(98, [m[0], {}, m[2], m[3]]), "tag 98"),
    (lambda m: [m[0], {}, m[2], m[3][:63]], "64 bytes"),
    (lambda m: {"a": 1}, "array of four"),
])
def test_pass_envelope_is_strict(tmp_path: Path, mutate: object, detail: str) -> None:
    from gate.passes import PassError, parse_text
    raw = cbor2.loads(bytes(cose(issue(claims(), SIGNER))))
    parts = [raw[0], raw[1], raw[2], raw[3], cbor2.loads(raw[0])[4]]
    text = text_of(cbor2.dumps(mutate(parts)))  # type: ignore[operator]
    with pytest.raises(PassError) as err:
        parse_text(text)
    assert err.value.reason == "bad_format" and detail in err.value.detail
    assert reason(tmp_path, text) == "bad_format"


def test_pass_tagged_cose_sign1_is_accepted(tmp_path: Path) -> None:
    raw = cbor2.loads(bytes(cose(issue(claims(), SIGNER))))
    assert reason(tmp_path, text_of(cbor2.dumps(cbor2.CBORTag(18, raw)))) == "grant"


def test_pass_trailing_bytes_are_refused(tmp_path: Path) -> None:
    assert reason(tmp_path, text_of(bytes(cose(issue(claims(), SIGNER))) + b"\x00")) \
        == "bad_format"


def test_pass_without_valid_from_is_valid_until_it_expires_and_shorter(
        tmp_path: Path) -> None:
    with_start = issue(claims(), SIGNER)
    text = issue(claims(valid_from=None), SIGNER)
    assert len(cose(with_start)) - len(cose(text)) >= 6
    assert reason(tmp_path, text, now=0) == "grant"       # no start: only the end bounds it
    assert reason(tmp_path, text, now=T + DAY) == "expired"
    # a key's service window cannot judge a pass with no start: signature and end decide
    late_key = pass_key(SIGNER, not_before=T + 10 * DAY, not_after=T + 20 * DAY)
    assert reason(tmp_path, text, keys=(late_key,)) == "grant"
    assert reason(tmp_path, with_start, keys=(late_key,)) == "unknown_key"


def test_pass_rot_travels_as_a_kind_bit_and_old_or_junk_kind_codes_are_refused() -> None:
    from gate.passes.claims import encode_claims, parse_claims
    from gate.passes.errors import PassError
    body = cbor2.loads(encode_claims(claims(kind="contractor", rotating=True)))
    assert body[3] == 2 | 4 and 7 not in body
    back = parse_claims(body)
    assert (back.kind, back.rotating) == ("contractor", True)
    assert parse_claims({**body, 3: 1}).rotating is False
    for junk in ({**body, 3: 3}, {**body, 3: 7}, {**body, 3: 8}, {**body, 3: True},
                 {**body, 7: True}, {k: v for k, v in body.items() if k != 5}):
        with pytest.raises(PassError) as err:
            parse_claims(junk)
        assert err.value.reason == "bad_format", junk
