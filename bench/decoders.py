"""Raw decoder cost and read rate: zxing-cpp and pyzbar at 640x480 and 1280x720.

Backends: zxing-cpp (``formats=[QRCodeModel2]``), zxing-cpp family (``[QRCode]``, which in
3.x includes Micro QR), pyzbar (``symbols=[ZBarSymbol.QRCODE]``) and pyzbar+negative (pyzbar,
then the negative frame on a miss: zbar reads no light-on-dark codes).

    python -m bench.decoders            # 200 code frames per difficulty, 60 empty frames
    python -m bench.decoders --quick    # 20 and 20: about half a minute

Each frame's cost is the shortest of three calls (other processes on the machine only ever
add time); "code" mixes easy, medium and hard frames in equal parts. A read is a frame whose
decoded payloads include the true one; a wrong payload is any other decoded text (on an
empty frame, any text).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np

from bench.common import code_frames, empty_frames, header, measure_decoder, ms, pct, table
from bench.scenes import DIFFICULTIES, SIZES

Decoder = Callable[[np.ndarray], list[str]]
REPEAT = 3  # each frame's cost is the shortest of this many calls


def zxing_decoder(family: bool = False) -> Decoder:
    """QR Code model 2 only; ``family`` reads zxing-cpp 3.x's QRCode family instead, which
    also takes Micro QR (and rMQR) symbols: a gate never issues those, and Micro QR M1 has no
    error correction, so a noisy frame can fake one."""
    import zxingcpp

    fmt = zxingcpp.BarcodeFormat
    formats = [fmt.QRCode if family else fmt.QRCodeModel2]

    def decode(y: np.ndarray) -> list[str]:
        return [b.text for b in zxingcpp.read_barcodes(y, formats=formats)]

    return decode


def pyzbar_decoder() -> Decoder:
    from pyzbar.pyzbar import ZBarSymbol
    from pyzbar.pyzbar import decode as zbar_decode

    def decode(y: np.ndarray) -> list[str]:
        found = zbar_decode(y, symbols=[ZBarSymbol.QRCODE])
        return [d.data.decode("utf-8", "replace") for d in found]

    return decode


def with_inverted_retry(decode: Decoder) -> Decoder:
    """zbar reads no light-on-dark codes: on a miss, read the negative too."""
    def retry(y: np.ndarray) -> list[str]:
        return decode(y) or decode(255 - y)
    return retry


def backends() -> dict[str, Decoder]:
    """The backends that load here; pyzbar needs libzbar0 (``apt-get install libzbar0``)."""
    found = {"zxing-cpp": zxing_decoder(), "zxing-cpp family": zxing_decoder(family=True)}
    try:
        found["pyzbar"] = pyzbar_decoder()
        found["pyzbar+negative"] = with_inverted_retry(found["pyzbar"])
    except ImportError as exc:
        print(f"pyzbar skipped: {exc} (apt-get install libzbar0)\n")
    return found


def run(per_difficulty: int, empty_scenes: int, per_scene: int) -> None:
    decoders = backends()
    cost_rows, rate_rows = [], []
    for size_name, size in SIZES.items():
        sets = {d: code_frames(d, size, per_difficulty) for d in DIFFICULTIES}
        empties = empty_frames(size, empty_scenes, per_scene)
        for name, decode in decoders.items():
            m = measure_decoder(decode, sets, empties, REPEAT)
            cost_rows.append([size_name, name, *ms(m.code_s), *ms(m.empty_s)])
            rates = [pct(m.reads[d], per_difficulty) for d in DIFFICULTIES]
            rate_rows.append([size_name, name, *rates, m.wrong])
    n_empty = empty_scenes * per_scene
    print(f"Decode cost per frame, ms ({3 * per_difficulty} code frames, {n_empty} empty frames"
          f" from {empty_scenes} entrances)")
    print(table(["size", "backend", "code med", "code p95", "empty med", "empty p95"], cost_rows))
    print()
    print(f"Read rate per difficulty ({per_difficulty} frames each); wrong = decoded payloads"
          " that are not the true one, on code and empty frames")
    print(table(["size", "backend", *DIFFICULTIES, "wrong"], rate_rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.decoders",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="20 frames per difficulty")
    args = parser.parse_args(argv)
    header("bench.decoders: raw decoder cost and read rate", "bench.decoders")
    if args.quick:
        run(per_difficulty=20, empty_scenes=4, per_scene=5)
    else:
        run(per_difficulty=200, empty_scenes=12, per_scene=5)


if __name__ == "__main__":
    main()
