"""Malformed central-server replies, one per call, from a seeded generator.

Every reply generated here breaks the API v1 contract (docs/server-api.md) in at least one
way, so a client that follows the contract treats each as "server unavailable": the reply
campaign may then count any effect of one as a failure."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from fuzz.junkserver import BAIT_PATH, Reply, head

JSON_CT = {"Content-Type": "application/json"}
TYPE_JUNK: list[Any] = [None, True, False, 0, -1, 1.5, 10**30, "", "x" * 300, [], [1],
                        {}, {"a": 1}]
NUMBER_JUNK = ["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "1" + "0" * 400, "-0",
               "1e-400"]


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, allow_nan=True).encode("utf-8")


def ok(klass: str, body: bytes, headers: dict[str, str] | None = None) -> Reply:
    return Reply(klass, head("200 OK", headers or JSON_CT, body), body)


def transport(rng: random.Random, endpoint: str, body: bytes, budget_s: float) -> Reply:
    """A well-formed body sent wrongly: status, headers, framing, timing, connection."""
    k = rng.randrange(11)
    if k == 0:
        status = rng.choice(["301 Moved Permanently", "302 Found", "303 See Other",
                             "307 Temporary Redirect", "308 Permanent Redirect"])
        h = {**JSON_CT, "Location": f"{BAIT_PATH}{endpoint}"}
        return Reply("status 3xx (redirect)", head(status, h, body), body)
    if k == 1:
        status = rng.choice(["100 Continue", "101 Switching Protocols", "102 Processing",
                             "103 Early Hints", "199 Odd"])
        return Reply("status 1xx", head(status, JSON_CT, body), body)
    if k == 2:
        codes = ["401 Unauthorized", "403 Forbidden", "404 Not Found", "409 Conflict",
                 "429 Too Many Requests", "500 Internal Server Error", "502 Bad Gateway",
                 "503 Service Unavailable", "599 Odd", "600 Beyond", "999 Nope"]
        if endpoint != "/v1/events":  # a 400 on upload means "set the event aside" there
            codes.append("400 Bad Request")
        return Reply("status 4xx/5xx", head(rng.choice(codes), JSON_CT, body), body)
    if k == 3:
        line = rng.choice(["HTTP/1.1 2OO OK", "HTTP/1.1 20 OK", "HTTP/1.1 -200 OK",
                           "HTTP/9.9 200 OK", "ICY 200 OK", "HTTP/1.1 200OK", "200 OK",
                           "HTTP/1.1 200 OK\x00"])
        raw = (line + "\r\nContent-Type: application/json\r\nContent-Length: "
               f"{len(body)}\r\nConnection: close\r\n\r\n").encode("latin-1")
        return Reply("bad status line", raw, body)
    if k == 4:
        ct = rng.choice(["text/html", "text/plain", "application/xml", "image/png",
                         "application/octet-stream", "application/json; charset=utf-16",
                         "multipart/form-data; boundary=x"])
        return Reply("wrong content type", head("200 OK", {"Content-Type": ct}, body), body)
    if k == 5:
        return Reply("no content type", head("200 OK", {}, body), body)
    if k == 6:  # announced longer than sent, then a reset
        cut = rng.randrange(0, max(1, len(body)))
        return Reply("closed mid-body", head("200 OK", JSON_CT, body), body, cut_at=cut)
    if k == 7:  # announced shorter than sent: the client reads a truncated document
        short = rng.randrange(0, max(1, len(body)))
        return Reply("content-length too short", head("200 OK", JSON_CT, body, short), body)
    if k == 8:
        partial = rng.choice([b"", b"HTTP/1.1 200", b"HTTP/1.1 200 OK\r\nContent-Ty"])
        return Reply("closed before a reply", partial, b"", cut_at=0)
    if k == 9:
        bad = rng.choice([b"zz\r\n" + body + b"\r\n0\r\n\r\n",
                          b"%x\r\n" % (len(body) + 7) + body + b"\r\n0\r\n\r\n",
                          b"-1\r\n" + body, body])
        h = {**JSON_CT, "Transfer-Encoding": "chunked"}
        return Reply("bad chunked framing", head("200 OK", h, bad, None), bad)
    # slow: past the door's budget (verify), or a body trickled slower than the read timeout
    if rng.random() < 0.5:
        return Reply("slow: stalls before replying", head("200 OK", JSON_CT, body), body,
                     delay_s=budget_s * 1.2)
    return Reply("slow: trickled body", head("200 OK", JSON_CT, body), body,
                 trickle_s=budget_s * 1.2 / max(1, len(body) // 64))


def body_junk(rng: random.Random, valid: dict[str, Any], required: list[str],
              typed: list[str], numeric: list[str]) -> tuple[str, bytes]:
    """A malformed JSON document derived from a valid one."""
    k = rng.randrange(10)
    text = json.dumps(valid)
    if k == 0:
        doc = copy.deepcopy(valid)
        key = rng.choice(typed)
        doc[key] = rng.choice([v for v in TYPE_JUNK if type(v) is not type(valid.get(key))
                               and (v is not None or key in required)  # null: "absent"
                               and not (key in numeric and isinstance(v, (int, float))
                                        and not isinstance(v, bool))])
        return f"wrong type: {key}", dumps(doc)
    if k == 1:
        doc = copy.deepcopy(valid)
        key = rng.choice(required)
        del doc[key]
        return f"missing: {key}", dumps(doc)
    if k == 2 and numeric:
        key = rng.choice(numeric)
        doc = copy.deepcopy(valid)
        doc[key] = "@@"
        return f"bad number: {key}", dumps(doc).replace(b'"@@"', rng.choice(NUMBER_JUNK).encode())
    if k == 3:  # the same key twice: which one a parser keeps is up to the parser
        key = rng.choice(required)
        inner = text[1:-1]
        evil = json.dumps({key: rng.choice(TYPE_JUNK)})[1:-1]
        both = f"{{{evil}, {inner}}}" if rng.random() < 0.5 else f"{{{inner}, {evil}}}"
        return "duplicate keys", both.encode()
    if k == 4:
        depth = rng.choice([1000, 100_000])
        nest = "[" * depth + "]" * depth
        if rng.random() < 0.5:
            return "deep nesting", nest.encode()
        doc = copy.deepcopy(valid)
        doc[rng.choice(typed)] = "@@"
        return "deep nesting", dumps(doc).replace(b'"@@"', nest.encode())
    if k == 5:
        top = rng.choice(["[]", "null", "0", '"grant"', "true", "[" + text + "]"])
        return "top level not an object", top.encode()
    if k == 6:
        return "truncated JSON", text.encode()[:rng.randrange(len(text))]
    if k == 7:
        enc = rng.choice(["utf-16", "utf-32", "utf-16-be"])
        return "wrong encoding", text.encode(enc)
    if k == 8:
        junk = [b"", b"<html><body>502</body></html>", b"\x89PNG\r\n\x1a\n", b"\xff\xfe\xfd",
                b"OK", b"\x00" * 32, b"{'decision': 'grant'}", b"decision=grant"]
        return "not JSON", rng.choice(junk)
    doc = copy.deepcopy(valid)
    key = rng.choice(required)
    doc[key] = "\udcff"  # a lone surrogate: json.dumps escapes it as \udcff
    return "lone surrogate", dumps(doc)


def verify_valid(rng: random.Random) -> dict[str, Any]:
    return {"decision": "grant", "reason": "ok", "label": "Junk", "open_s": 4,
            "status": "green", "credential_id": "c-1"}


def verify_reply(rng: random.Random, budget_s: float) -> Reply:
    valid = verify_valid(rng)
    if rng.random() < 0.3:
        return transport(rng, "/v1/verify", dumps(valid), budget_s)
    if rng.random() < 0.15:
        doc = dict(valid, decision=rng.choice(["GRANT", "grant ", " grant", "granted", "allow",
                                               "yes", "open", True, 1, ["grant"],
                                               {"grant": True}, "grant\x00", "ｇｒａｎｔ"]))
        return ok("unknown decision", dumps(doc))
    if rng.random() < 0.1:
        doc = dict(valid, open_s=rng.choice([0, -4, 1e9, "4", True, [4], 10**400]))
        return ok("open_s out of range", dumps(doc) if doc["open_s"] != 10**400 else
                  dumps(dict(valid, open_s="@@")).replace(b'"@@"', b"1" + b"0" * 400))
    klass, body = body_junk(rng, valid, required=["decision", "reason"],
                            typed=["decision", "reason", "label", "status", "open_s"],
                            numeric=["open_s"])
    return ok(klass, body)


def credential_row(rng: random.Random, i: int) -> dict[str, Any]:
    return {"id": f"j{i}", "code_sha256": f"{rng.getrandbits(256):064x}", "label": f"Junk {i}",
            "valid_from": "2020-01-01T00:00:00Z", "valid_until": "2099-01-01T00:00:00Z",
            "revoked": False, "status": "green"}


def credentials_reply(rng: random.Random, budget_s: float) -> Reply:
    rows = [credential_row(rng, i) for i in range(rng.randrange(1, 6))]
    valid = {"cursor": f"junk-{rng.getrandbits(32)}", "full": True, "credentials": rows}
    if rng.random() < 0.25:
        return transport(rng, "/v1/credentials", dumps(valid), budget_s)
    if rng.random() < 0.3:  # the envelope is fine, one row is not
        row = rows[rng.randrange(len(rows))]
        key = rng.choice(list(row))
        # Any string is a legal label or status (an unknown colour is the policy's to deny),
        # and null is a legal "absent" for every optional field: neither is junk here.
        free_text = key in ("label", "status")
        row[key] = rng.choice(
            [v for v in TYPE_JUNK + ["2026-13-01", "yesterday", "00", "g" * 64]
             if v is not None and (type(v) is not type(row[key])
                                   or (isinstance(v, str) and not free_text))])
        if key == "id" and isinstance(row[key], str):
            row[key] = [1]
        return ok(f"bad row: {key}", dumps(valid))
    if rng.random() < 0.2:
        doc = dict(valid, full=rng.choice(["false", "true", 1, 0, None, [], "no"]))
        return ok("full not a boolean", dumps(doc))
    klass, body = body_junk(rng, valid, required=["cursor", "credentials", "full"],
                            typed=["cursor", "credentials", "full"], numeric=[])
    return ok(klass, body)


def events_reply(rng: random.Random, sent: int, budget_s: float) -> Reply:
    """Replies that acknowledge nothing under docs/server-api.md's upload rule: a 2xx JSON
    object marks the batch only when `stored` is absent or equals the batch size (extra
    fields such as `duplicates` are ignored), so those are never generated here."""
    valid = {"stored": sent, "duplicates": 0}
    if rng.random() < 0.3:
        return transport(rng, "/v1/events", dumps(valid), budget_s)
    if rng.random() < 0.2:
        status = rng.choice(["202 Accepted", "204 No Content", "201 Created",
                             "206 Partial Content"])
        return Reply("2xx without a JSON object", head(status, JSON_CT, b""), b"")
    if rng.random() < 0.3:
        doc = rng.choice([{"stored": sent + 1}, {"stored": sent - 1}, {"stored": 0},
                          {"stored": -sent}, {"stored": sent * 1000}])
        return ok("stored is not the batch size", dumps(doc))
    while True:  # a missing `stored` means "all stored" in the contract: not junk
        klass, body = body_junk(rng, valid, required=["stored"], typed=["stored"],
                                numeric=["stored"])
        if not klass.startswith("missing"):
            return ok(klass, body)
