"""Payload campaign: random and adversarial QR payloads through the real verifier chain over a
real allowlist store, and a sample of them as real QR images through the real decoder.

A wrong grant is any grant for a payload whose bytes are not exactly an enrolled, currently
valid code.

    python -m fuzz.payloads [--n 100000] [--images 2000] [--seed 1]
"""

from __future__ import annotations

import argparse
import random
import sys
import unicodedata

import numpy as np

from fuzz.common import Result, progress, report, rng_for, timed_result
from fuzz.world import World, list_world

PROPERTIES = ["uncaught exceptions", "wrong grants"]
QR_MAX_BYTES = 2953  # version 40, error correction L


def near_miss(rng: random.Random, code: bytes) -> bytes:
    """An enrolled code changed in one small way a forger or a bad decoder might produce."""
    text = code.decode("utf-8", errors="surrogateescape")
    kind = rng.randrange(14)
    if kind == 0 and code:
        i = rng.randrange(len(code))
        return code[:i] + bytes([code[i] ^ (1 << rng.randrange(8))]) + code[i + 1:]
    if kind == 1:
        return code[:-1]
    if kind == 2:
        return code + bytes([rng.randrange(256)])
    if kind == 3:
        return code + b"\x00"
    if kind == 4:
        return b"\x00" + code
    if kind == 5:
        return b" " + code + b"\r\n"
    if kind == 6:
        return b"\xef\xbb\xbf" + code  # a UTF-8 byte order mark
    if kind == 7:
        return text.swapcase().encode("utf-8", errors="surrogateescape")
    if kind == 8:
        return unicodedata.normalize("NFD", text).encode("utf-8", errors="surrogateescape")
    if kind == 9:
        return text.encode("utf-16", errors="surrogatepass")
    if kind == 10:
        return text.encode("latin-1", errors="replace")
    if kind == 11:  # fullwidth forms of ASCII letters and digits
        return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c
                       for c in text).encode("utf-8", errors="surrogateescape")
    if kind == 12:
        return code * 2
    return code.replace(b"-", b"_") if b"-" in code else code + b"-"


def random_payload(rng: random.Random, world: World) -> bytes:
    kind = rng.randrange(10)
    if kind == 0:
        return rng.randbytes(rng.randrange(0, 65))
    if kind == 1:
        return rng.randbytes(rng.randrange(65, 4000))
    if kind == 2:
        return rng.randbytes(QR_MAX_BYTES) if rng.random() < 0.5 else bytes(QR_MAX_BYTES)
    if kind == 3:  # invalid UTF-8: lone continuation bytes, overlongs, surrogates, 0xFF
        bad = [b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xff", b"\xf8\x88\x80\x80\x80", b"\xc3"]
        return b"".join(rng.choice(bad) + rng.randbytes(rng.randrange(3))
                        for _ in range(rng.randrange(1, 12)))
    if kind == 4:  # empty-ish
        return rng.choice([b"", b"\x00", b" ", b"\n", b"\x00" * rng.randrange(1, 64),
                           b"\t\r\n ", b"\xef\xbb\xbf", b'""', b"null", b"0"])
    if kind in (5, 6, 7):
        return near_miss(rng, rng.choice(world.enrolled))
    if kind == 8:  # exactly an enrolled code, valid or not (the oracle knows which)
        return rng.choice(world.enrolled)
    text = "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x800),
                                   rng.randrange(0x800, 0xD800), rng.randrange(0x10000,
                                                                               0x10FFFF)]))
                   for _ in range(rng.randrange(1, 80)))
    return text.encode("utf-8")


def check(world: World, payload: bytes, result: Result, where: str) -> str | None:
    try:
        verdict = world.decide(payload)
    except Exception as exc:
        result.crashed(where, exc)
        return None
    if verdict == "grant" and payload not in world.valid:
        result.fail("wrong grants", f"{where}: {payload[:40]!r} ({len(payload)} bytes)")
    if payload in world.valid:
        result.info["enrolled valid codes presented"] += 1
        result.info["of which granted"] += verdict == "grant"
    return verdict


def qr_luma(payload: bytes, module_px: int) -> np.ndarray:
    import segno  # only the image part needs it

    qr = segno.make_qr(payload, error="l", mode="byte", boost_error=False)
    mods = np.pad(np.array(qr.matrix, dtype=bool), 4)
    return np.where(np.kron(mods, np.ones((module_px, module_px), dtype=bool)), 0,
                    255).astype(np.uint8)


def run(n: int, images: int, seed: int) -> Result:
    from gate.scan.decode import make_decoder

    result = Result("payloads")
    with timed_result(result), list_world() as world:
        for i in range(n):
            check(world, random_payload(rng_for(seed, "payload", i), world), result,
                  f"payload {i}")
            progress(i, n, 20000)
        result.cases = n
        decoder = make_decoder("zxing")
        for i in range(images):
            rng = rng_for(seed, "image", i)
            payload = random_payload(rng, world)[:rng.choice([40, 200, 1000, QR_MAX_BYTES])]
            try:
                codes = decoder.decode(qr_luma(payload, module_px=2 if len(payload) > 400 else 3))
            except Exception as exc:
                result.crashed(f"image {i}", exc)
                continue
            result.info["QR images made"] += 1
            for code in codes:
                result.info["decoded bytes differ from encoded"] += code.data != payload
                verdict = check(world, code.data, result, f"image {i}")
                if verdict == "grant" and payload not in world.valid:
                    result.fail("wrong grants", f"image {i}: decoded differently, granted")
            result.info["QR images not read"] += not codes
        result.cases += images
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.payloads", description=__doc__)
    parser.add_argument("--n", type=int, default=100_000, help="payloads through the chain")
    parser.add_argument("--images", type=int, default=2_000, help="of them as QR images")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="2,000 payloads, 100 images")
    args = parser.parse_args(argv)
    if args.quick:
        args.n, args.images = 2_000, 100
    return report(run(args.n, args.images, args.seed), PROPERTIES)


if __name__ == "__main__":
    sys.exit(main())
