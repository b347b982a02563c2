"""Warnings about allowlist codes too short or too guessable to stay private: the journal,
a leaked list of hashes or the server keeps an unsalted SHA-256 of each code, and a 6-digit
code is reversed from its hash in under a second. The gate warns and loads them anyway.

What counts: fewer than MIN_CHARS (12) characters; only digits and fewer than MIN_DIGITS (19); or
fewer than MIN_BITS (60) of estimated entropy, where the estimate is length x log2(size of the
character classes the code uses: digits 10, lower 26, upper 26, other printable ASCII 33)
and a code of at most 4 distinct characters counts 2 bits a character (AAAA-1111-...).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

MIN_CHARS = 12
MIN_DIGITS = 19          # 19 digits: 63 bits, the first digit count over MIN_BITS
MIN_BITS = 60
MAX_SHOWN = 20
CLASSES = ((str.isdigit, 10), (str.islower, 26), (str.isupper, 26))
OTHER = 33


def estimated_bits(code: str) -> float:
    if not code:
        return 0.0
    alphabet = sum(size for test, size in CLASSES if any(test(c) and c.isascii() for c in code))
    if any(not (c.isascii() and c.isalnum()) for c in code):
        alphabet += OTHER
    per_char = math.log2(alphabet) if len(set(code)) > 4 else 2.0
    return len(code) * per_char


def weakness(code: str) -> str | None:
    """Why `code` is too guessable, or None. Never says what the code is."""
    if code.isascii() and code.isdigit() and len(code) < MIN_DIGITS:
        return f"only digits and {len(code)} of them (fewer than {MIN_DIGITS})"
    if len(code) < MIN_CHARS:
        return f"{len(code)} characters (fewer than {MIN_CHARS})"
    bits = estimated_bits(code)
    if bits < MIN_BITS:
        return f"about {bits:.0f} bits of entropy (fewer than {MIN_BITS})"
    return None


def weak_code_warnings(path: Path) -> list[str]:
    """"file:line: ..." for the first MAX_SHOWN weak codes of a `code` column, and a count
    of the rest. A list of hashes (code_sha256), or one that does not read, gives none: the
    loader reports its problems itself."""
    shown: list[str] = []
    total = 0
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = [h.strip().lower() for h in next(reader, [])]
            if "code" not in header:
                return []
            col = header.index("code")
            for row in reader:
                if len(row) <= col or not row[col].strip() or row[0].lstrip().startswith("#"):
                    continue
                why = weakness(row[col].strip())
                if why is not None:
                    total += 1
                    if len(shown) < MAX_SHOWN:
                        shown.append(f"{path}:{reader.line_num}: code is guessable from its "
                                     f"hash: {why}; use a signed pass or a longer random code")
    except (OSError, UnicodeDecodeError, csv.Error):
        return []
    if total > len(shown):
        shown.append(f"{path}: ... and {total - len(shown)} more guessable codes")
    return shown
