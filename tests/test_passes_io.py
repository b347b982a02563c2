"""Signed passes at the edges: real QR images through both decoders, thousands of mutated
payloads, the keys file loader, and the revocation store's atomic replace and delta."""

from __future__ import annotations

import json
import random
import threading
from pathlib import Path

import pytest

from gate.passes import (
    KeysFileError,
    RevocationStore,
    code_at,
    dump_keys,
    issue,
    load_keys_file,
    pass_secret,
)
from gate.scan.decode import PyzbarDecoder, ZxingDecoder
from tests.support.passhelpers import (
    OTHER,
    SIGNER,
    SITE_KEY,
    T,
    Window,
    claims,
    cose,
    pass_key,
    text_of,
    verifier,
)
from tests.support.qrimages import qr_frame

REASONS = {"bad_format", "unknown_key", "bad_signature", "expired", "not_yet_valid",
           "wrong_site", "outside_schedule", "stale_code", "revoked"}


@pytest.mark.parametrize("decoder", [ZxingDecoder(), PyzbarDecoder()], ids=["zxing", "pyzbar"])
def test_pass_qr_images_decode_and_verify(tmp_path: Path, decoder: object) -> None:
    c = claims(rotating=True, schedule=(Window(0x7F, 0, 1440 - 1),))
    shown = issue(c, SIGNER) + "*" + code_at(pass_secret(SITE_KEY, c.pass_id), T)
    v = verifier(tmp_path)
    for text in (issue(claims(kind="staff"), SIGNER), shown):
        codes = decoder.decode(qr_frame(text, size=(800, 800), module_px=5))  # type: ignore[attr-defined]
        assert [code.data for code in codes] == [text.encode()]
        d = v.check(codes[0].sha256, codes[0].data, T)
        assert d is not None and (d.verdict, d.source) == ("grant", "pass")


def mutate(rng: random.Random, raw: bytearray) -> bytes:
    out = bytearray(raw)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        i = rng.randrange(len(out)) if out else 0
        if op == 0 and out:
            out[i] ^= 1 << rng.randrange(8)
        elif op == 1 and out:
            out[i] = rng.randrange(256)
        elif op == 2:
            out.insert(i, rng.randrange(256))
        elif op == 3 and out:
            del out[i:i + rng.randint(1, 8)]
        else:
            out = out[:rng.randrange(len(out) + 1)]
    return bytes(out)


def test_pass_hostile_payloads_only_clean_denials(tmp_path: Path) -> None:
    rng = random.Random(11)
    v = verifier(tmp_path)
    base = cose(issue(claims(rotating=True, schedule=(Window(1, 60, 120),)), SIGNER))
    plain = issue(claims(), SIGNER)
    seen: dict[str, int] = {}
    for n in range(3000):
        kind = n % 3
        if kind == 0:    # mutated COSE bytes, re-encoded as a proper Base45 text
            text = text_of(mutate(rng, base))
        elif kind == 1:  # mutated text: any character, any length, suffixes
            chars = list(plain + rng.choice(["", "*12345678", "*", "*1234567x"]))
            for _ in range(rng.randint(1, 3)):
                chars[rng.randrange(4, len(chars))] = chr(rng.choice([rng.randrange(32, 127),
                                                                   rng.randrange(0, 0x2FFF)]))
            text = "".join(chars)
            if text == plain:      # a character replaced by itself: the genuine pass
                continue
        else:            # raw bytes behind the prefix, through the chain's bytes interface
            junk = b"GP1:" + bytes(rng.randrange(256) for _ in range(rng.randrange(300)))
            d = v.check("0" * 64, junk, T)
            assert d is not None and d.verdict == "deny" and d.reason in REASONS
            seen[d.reason] = seen.get(d.reason, 0) + 1
            continue
        d = v.decide(text, T)
        assert d.verdict == "deny" and d.reason in REASONS, (n, d)
        seen[d.reason] = seen.get(d.reason, 0) + 1
    assert v.decide("GP1:" + "A" * 5000, T).reason == "bad_format"  # size bound first
    assert {"bad_format", "bad_signature"} <= set(seen)


def test_keys_file_round_trip_and_strict_errors(tmp_path: Path) -> None:
    good = tmp_path / "keys.json"
    good.write_text(dump_keys([pass_key(SIGNER, 0, 2_000_000_000), pass_key(OTHER, 100)]))
    ring = load_keys_file(good, synced_at=5.0)
    assert [k.kid for k in ring.keys] == [pass_key(SIGNER).kid, pass_key(OTHER).kid]
    assert ring.keys[1].not_after is None and ring.synced_at == 5.0

    entry = pass_key(SIGNER).to_json()
    cases = {
        "not JSON": "{",
        "exactly one field": json.dumps({"keys": [], "x": 1}),
        "keys[0]: unknown field extra": json.dumps({"keys": [{**entry, "extra": 1}]}),
        "keys[0]: missing field not_after": json.dumps(
            {"keys": [{k: v for k, v in entry.items() if k != "not_after"}]}),
        "keys[0].public_key: must be 43": json.dumps({"keys": [{**entry, "public_key": "AA"}]}),
        "keys[0].kid: must be 8 lowercase": json.dumps({"keys": [{**entry, "kid": "XYZ"}]}),
        "keys[0]: kid 00000000 is not": json.dumps({"keys": [{**entry, "kid": "00000000"}]}),
        "keys[0].not_before: must be epoch": json.dumps({"keys": [{**entry, "not_before": True}]}),
        "keys[0]: not_after must be after": json.dumps(
            {"keys": [{**entry, "not_before": 10, "not_after": 5}]}),
        "appears more than once": json.dumps({"keys": [entry, entry]}),
    }
    for expected, text in cases.items():
        path = tmp_path / "bad.json"
        path.write_text(text)
        with pytest.raises(KeysFileError) as err:
            load_keys_file(path)
        assert err.value.problems[0].startswith(str(path)) and expected in str(err.value), \
            (expected, err.value.problems)
    with pytest.raises(KeysFileError, match="cannot read"):
        load_keys_file(tmp_path / "missing.json")


def test_revocations_replace_is_atomic_and_cursor_survives(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    store = RevocationStore(db)
    assert store.cursor is None and store.count() == 0
    store.replace([b"a1", b"a2"], "c1")
    with pytest.raises(ValueError, match="1..64 bytes"):
        store.replace([b"b1", "not-bytes"], "c2")  # type: ignore[list-item]
    assert store.revoked(b"a1") and not store.revoked(b"b1") and store.cursor == "c1"
    store.update([b"b1"], [b"a1"], "c3")
    assert not store.revoked(b"a1") and store.revoked(b"b1") and store.revoked(b"a2")
    store.close()
    again = RevocationStore(db)
    assert again.cursor == "c3" and again.count() == 2


def test_revocations_readers_see_old_set_until_the_replace_commits(tmp_path: Path) -> None:
    store = RevocationStore(tmp_path / "r.db")
    store.replace([b"old"], "c1")
    gate = threading.Event()
    release = threading.Event()

    def ids() -> object:
        yield b"new1"
        gate.set()                # the writer is mid-transaction now
        release.wait(5)
        yield b"new2"

    writer = threading.Thread(target=store.replace, args=(ids(), "c2"))
    writer.start()
    assert gate.wait(5)
    seen = (store.revoked(b"old"), store.revoked(b"new1"), store.cursor)
    release.set()
    writer.join(5)
    assert seen == (True, False, "c1")
    assert (store.revoked(b"old"), store.revoked(b"new2"), store.cursor) == (False, True, "c2")
