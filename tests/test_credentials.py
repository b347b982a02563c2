"""The technician's allowlist CSV and the SQLite credential store (codes only as SHA-256)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from gate.errors import AllowlistError
from gate.verify.credentials import (
    LIST,
    SERVER,
    Credential,
    CredentialStore,
    hash_code,
    load_allowlist_into,
    parse_list_time,
    read_allowlist,
)


def sha(code: str) -> str:
    return hashlib.sha256(code.encode("utf-8")).hexdigest()


def local_ts(*args: int) -> float:
    return datetime(*args).timestamp()  # naive: the gate's local time


def write_list(tmp_path: Path, text: str, name: str = "allow.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CredentialStore]:
    s = CredentialStore(tmp_path / "state" / "credentials.db")
    yield s
    s.close()


# -- the allowlist file ---------------------------------------------------------------------

def test_allowlist_code_column_is_hashed_with_label_and_window(tmp_path: Path) -> None:
    path = write_list(tmp_path, "code,label,valid_from,valid_until\n"
                                "ALICE-0001,Alice,2026-01-01,2026-12-31\n"
                                "BOB-0002,Bob,,\n")
    load = read_allowlist(path)
    assert load.problems == []
    alice, bob = load.credentials
    assert alice == Credential(code_sha256=sha("ALICE-0001"), origin=LIST, label="Alice",
                               valid_from=local_ts(2026, 1, 1), valid_until=local_ts(2027, 1, 1))
    assert bob.code_sha256 == sha("BOB-0002") and bob.label == "Bob"
    assert bob.valid_from is None and bob.valid_until is None  # empty: unbounded


def test_allowlist_code_sha256_column_is_taken_as_is(tmp_path: Path) -> None:
    digest = sha("CAROL-0003")
    path = write_list(tmp_path, "code_sha256,label\n"
                                f"{digest.upper()},Carol\n")  # hex in any case
    (cred,) = read_allowlist(path).credentials
    assert cred.code_sha256 == digest and cred.label == "Carol"


def test_allowlist_columns_in_any_order_and_case_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "allow.csv"
    path.write_bytes("\ufeffLabel, Valid_Until ,CODE\nDan,2026-06-30,DAN-4\n".encode("utf-8"))
    load = read_allowlist(path)
    (cred,) = load.credentials
    assert load.problems == []
    assert cred.code_sha256 == sha("DAN-4") and cred.label == "Dan"
    assert cred.valid_until == local_ts(2026, 7, 1)


def test_allowlist_bad_rows_are_reported_with_file_and_line_and_skipped(tmp_path: Path) -> None:
    path = write_list(tmp_path, "\n".join([
        "code,label,valid_from,valid_until",   # 1
        "GOOD-1,One,,",                         # 2
        ",Nobody,,",                            # 3 empty code
        "GOOD-2,Two,2026-13-01,",               # 4 bad date
        "# a comment line,,,",                  # 5 skipped silently
        "",                                     # 6 blank: skipped silently
        "GOOD-3,Three,2026-05-01,2026-04-01",   # 7 until before from
        "GOOD-4,Four,2026-05-01,2026-05-01T00:00:00",  # 8 until == from
        "GOOD-1,Again,,",                       # 9 duplicate
        "GOOD-5,Five,2026-05-01T08:30,2026-05-01",     # 10 fine: until is the end of that day
    ]) + "\n")
    load = read_allowlist(path)
    assert [c.code_sha256 for c in load.credentials] == [sha("GOOD-1"), sha("GOOD-5")]
    assert load.credentials[0].label == "One", "the first of two duplicates is kept"
    lines = [p.split(": ", 1)[0] for p in load.problems]
    assert lines == [f"{path}:3", f"{path}:4", f"{path}:7", f"{path}:8", f"{path}:9"]
    text = "\n".join(load.problems)
    assert "empty code" in load.problems[0]
    assert "'2026-13-01'" in load.problems[1]
    assert "valid_until" in load.problems[2] and "valid_until" in load.problems[3]
    assert "again" in load.problems[4]
    assert all(p.endswith("row skipped") for p in load.problems), text


def test_allowlist_bad_sha256_values_are_reported(tmp_path: Path) -> None:
    good = sha("X")
    path = write_list(tmp_path, "code_sha256,label\n"
                                f"{good[:-1]},short\n"
                                f"{good[:-1]}g,not-hex\n"
                                f"{good},fine\n"
                                ",empty\n")
    load = read_allowlist(path)
    assert [c.label for c in load.credentials] == ["fine"]
    assert [p.split(": ", 1)[0] for p in load.problems] == [f"{path}:2", f"{path}:3", f"{path}:5"]
    assert all("64 hexadecimal" in p for p in load.problems)


@pytest.mark.parametrize(("header", "word"), [
    ("code,label,valid_till", "did you mean 'valid_until'?"),   # misspelt: would never expire
    ("code,label,valid_from,valid_until,room", "column 5 is not one of"),
    ("code,label,", "column 3 is not one of"),                    # an empty column name
])
def test_allowlist_unknown_column_refuses_the_whole_file(tmp_path: Path, header: str,
                                                         word: str) -> None:
    path = write_list(tmp_path, f"{header}\nE-5,Eve,2020-01-01,x,y\n")
    with pytest.raises(AllowlistError) as info:
        read_allowlist(path)
    assert str(info.value).startswith(f"{path}:1: ") and word in str(info.value)


def test_allowlist_headerless_file_is_refused_without_echoing_the_code(tmp_path: Path) -> None:
    secret = "RAW-SECRET-7781"  # the technician forgot the header: the first row is a code
    path = write_list(tmp_path, f"{secret},Alice,,\nOTHER-1,Bob,,\n")
    with pytest.raises(AllowlistError) as info:
        read_allowlist(path)
    assert "header line missing" in str(info.value)
    assert secret.lower() not in str(info.value).lower()


def test_allowlist_duplicate_column_refuses_the_whole_file(tmp_path: Path) -> None:
    path = write_list(tmp_path, "code,label,valid_until,Valid_Until\nA,a,2020-01-01,2099-01-01\n")
    with pytest.raises(AllowlistError, match="'valid_until' appears twice"):
        read_allowlist(path)


def test_allowlist_far_future_dates_load_as_valid_rows(tmp_path: Path) -> None:
    path = write_list(tmp_path, "code,label,valid_from,valid_until\n"
                                "A,never expires,,9999-12-31\n"
                                "B,last second,0001-01-01,9999-12-31T23:59:59\n"
                                "C,offset,,9999-12-31T23:59:59-12:00\n")
    load = read_allowlist(path)
    assert load.problems == []
    a, b, c = load.credentials
    assert a.valid_until is not None and a.valid_until > local_ts(9999, 12, 31, 23, 59, 59)
    assert b.valid_from is not None and b.valid_from < local_ts(2000, 1, 1)
    assert c.valid_until == datetime(9999, 12, 31, 23, 59, 59,
                                     tzinfo=timezone(timedelta(hours=-12))).timestamp()


@pytest.mark.parametrize("tz", ["Pacific/Kiritimati", "America/Adak", "UTC", "Asia/Kolkata"])
def test_parse_time_year_edges_never_overflow_in_any_local_zone(tz: str) -> None:
    import subprocess
    import sys
    # Local time is process-wide: each zone in its own interpreter.
    code = ("from gate.verify.credentials import parse_list_time as p\n"
            "for t in ('9999-12-31', '9999-12-31T23:59:59', '0001-01-01', '0001-01-01T00:00'):\n"
            "    a, b = p(t, end_of_day=False), p(t, end_of_day=True)\n"
            "    assert a <= b, (t, a, b)\n"
            "print(p('9999-12-31', end_of_day=True) > p('9999-12-31', end_of_day=False))\n")
    import os
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "TZ": tz}, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr


def test_allowlist_unusable_values_are_skipped_with_file_and_line(tmp_path: Path) -> None:
    path = write_list(tmp_path, "\n".join([
        "code,label,valid_from,valid_until",      # 1
        "A,short row,2020-01-01",                  # 2 valid_until missing: not "never"
        "B,long row,,,extra",                      # 3
        "C,year out of range,,10000-01-01",        # 4
        "D,year zero,0000-01-01,",                 # 5
        "E,nul\x00inside,,",                       # 6
        "F," + "L" * 300 + ",,",                   # 7 label too long
        "G" * 8000 + ",huge code,,",               # 8
        "H,tab\tin label,,",                       # 9 control character
        "I,fine,,9999-12-31",                      # 10
    ]) + "\n")
    load = read_allowlist(path)
    assert [c.label for c in load.credentials] == ["fine"]
    assert [p.split(": ", 1)[0] for p in load.problems] == [f"{path}:{n}" for n in range(2, 10)]
    assert "3 fields where the header has 4" in load.problems[0]
    assert "within years 1..9999" in load.problems[2]
    assert "NUL" in load.problems[4]
    assert "G" * 50 not in "\n".join(load.problems)  # values too long are never echoed


def test_allowlist_bad_value_that_might_be_a_code_is_not_echoed(tmp_path: Path) -> None:
    path = write_list(tmp_path, "code,label,valid_from,valid_until\n"
                                "A,a,SECRET-CODE-991,\n")   # shifted cells
    (problem,) = read_allowlist(path).problems
    assert "SECRET" not in problem and "the value is not an ISO 8601" in problem


@pytest.mark.parametrize(("content", "count"), [
    (b"code,label\r\nA,a\r\nB,b\r\n", 2),            # CRLF
    (b"\xef\xbb\xbfcode,label\nA,a\n", 1),              # BOM
    (b"code,label,valid_from,valid_until\n", 0),        # header only: an empty list
    (b"code,label\n\n\n# comment\nA,a\n", 1),
])
def test_allowlist_clean_loads(tmp_path: Path, content: bytes, count: int) -> None:
    path = tmp_path / "allow.csv"
    path.write_bytes(content)
    load = read_allowlist(path)
    assert load.problems == [] and len(load.credentials) == count


def test_allowlist_huge_field_and_fifo_are_clear_errors(tmp_path: Path) -> None:
    import os
    path = tmp_path / "allow.csv"
    path.write_bytes(b'code,label\n"' + b"x" * 200_000 + b'",a\n')  # past csv's field limit
    with pytest.raises(AllowlistError, match="cannot read allowlist"):
        read_allowlist(path)
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)  # opening it would block the watcher for ever
    with pytest.raises(AllowlistError, match="not a regular file"):
        read_allowlist(fifo)


def test_allowlist_many_bad_rows_report_a_bounded_list(tmp_path: Path) -> None:
    from gate.verify.credentials import MAX_PROBLEMS
    path = write_list(tmp_path, "code,label\n" + ",empty\n" * 5000 + "OK,ok\n")
    load = read_allowlist(path)
    assert len(load.credentials) == 1
    assert len(load.problems) == MAX_PROBLEMS + 1
    assert load.problems[-1] == f"... and {5000 - MAX_PROBLEMS} more problems"


def test_allowlist_loader_never_raises_anything_but_allowlist_error(tmp_path: Path) -> None:
    import random
    rng = random.Random(8)
    pieces = [b"code", b"code_sha256", b"label", b"valid_from", b"valid_until", b",", b"\n",
              b"\r\n", b'"', b"9999-12-31", b"0001-01-01", b"T23:59:59+14:00", b"\x00",
              b"\xff", b"\xef\xbb\xbf", b"#", b"A" * 300, b"2026-02-30", b" ", b"Z"]
    path = tmp_path / "allow.csv"
    for _ in range(400):
        path.write_bytes(b"".join(rng.choice(pieces) for _ in range(rng.randint(0, 40))))
        try:
            load = read_allowlist(path)
        except AllowlistError as exc:
            assert str(path) in str(exc)  # noqa: PT017 (either outcome is checked)
        else:
            assert all(p.startswith(f"{path}:") for p in load.problems)


@pytest.mark.parametrize(("content", "word"), [
    (b"label,valid_from\nAlice,2026-01-01\n", "code"),           # no code column
    (b"code,code_sha256,label\nA,B,C\n", "code_sha256"),          # both
    (b"", "empty file"),
    (b"code,label\nCaf\xe9,latin-1 bytes\n", "cannot read"),      # not UTF-8
])
def test_allowlist_unusable_file_raises_naming_the_file(tmp_path: Path, content: bytes,
                                                        word: str) -> None:
    path = tmp_path / "allow.csv"
    path.write_bytes(content)
    with pytest.raises(AllowlistError) as info:
        read_allowlist(path)
    assert str(path) in str(info.value) and word in str(info.value)


def test_allowlist_missing_file_raises_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(AllowlistError) as info:
        read_allowlist(tmp_path / "nope.csv")
    assert str(info.value) == f"{tmp_path / 'nope.csv'}: allowlist file not found"


def test_allowlist_directory_instead_of_file_raises_naming_it(tmp_path: Path) -> None:
    with pytest.raises(AllowlistError) as info:
        read_allowlist(tmp_path)
    assert str(tmp_path) in str(info.value)


# -- times ----------------------------------------------------------------------------------

def test_parse_time_date_only_valid_until_covers_the_whole_day() -> None:
    until = parse_list_time("2026-12-31", end_of_day=True)
    assert until == local_ts(2027, 1, 1)
    assert local_ts(2026, 12, 31, 23, 59, 59) < until  # still valid late that evening
    assert parse_list_time("2026-12-31", end_of_day=False) == local_ts(2026, 12, 31)


def test_parse_time_forms() -> None:
    assert parse_list_time("", end_of_day=True) is None
    assert parse_list_time("2026-05-01T08:00:00+02:00", end_of_day=False) == \
        datetime(2026, 5, 1, 6, 0, tzinfo=timezone.utc).timestamp()
    assert parse_list_time("2026-05-01T08:00:00Z", end_of_day=True) == \
        datetime(2026, 5, 1, 8, 0, tzinfo=timezone.utc).timestamp()
    assert parse_list_time("2026-05-01 08:00", end_of_day=False) == local_ts(2026, 5, 1, 8, 0)
    for bad in ("tomorrow", "2026-02-30", "01/05/2026"):
        with pytest.raises(ValueError, match="ISO 8601"):
            parse_list_time(bad, end_of_day=False)


def test_hash_code_is_the_sha256_of_the_utf8_bytes() -> None:
    assert hash_code("Zoë") == hash_code("Zoë".encode()) == hashlib.sha256(b"Zo\xc3\xab").hexdigest()


# -- the store ------------------------------------------------------------------------------

def test_store_lookup_finds_loaded_codes_by_hash_and_origin(tmp_path: Path,
                                                            store: CredentialStore) -> None:
    path = write_list(tmp_path, "code,label,valid_until\nF-6,Fay,2026-02-28\nG-7,Gus,\n")
    result = load_allowlist_into(store, path)
    assert result.problems == [] and store.count(LIST) == 2
    fay = store.lookup(sha("F-6"), LIST)
    assert fay is not None and fay.label == "Fay" and fay.origin == LIST
    assert fay.valid_until == local_ts(2026, 3, 1) and fay.revoked is False
    assert store.lookup(sha("NOT-THERE"), LIST) is None
    assert store.lookup(sha("F-6"), SERVER) is None  # origins are kept apart


def test_store_replace_swaps_one_origin_and_leaves_the_other(store: CredentialStore) -> None:
    store.replace(SERVER, [Credential(code_sha256=sha("S1"), cred_id="c-1", revoked=True)])
    store.replace(LIST, [Credential(code_sha256=sha("L1")), Credential(code_sha256=sha("L2"))])
    store.replace(LIST, [Credential(code_sha256=sha("L3"))])
    assert store.count(LIST) == 1 and store.lookup(sha("L1"), LIST) is None
    s1 = store.lookup(sha("S1"), SERVER)
    assert s1 is not None and s1.revoked is True and s1.cred_id == "c-1"
    assert s1.origin == SERVER


def test_store_replace_is_atomic_when_the_rows_fail_midway(store: CredentialStore) -> None:
    old = [Credential(code_sha256=sha(f"OLD-{i}"), label=f"old {i}") for i in range(5)]
    store.replace(LIST, old, meta={"cursor": "old"})

    def new_rows() -> Iterator[Credential]:
        for i in range(3):
            yield Credential(code_sha256=sha(f"NEW-{i}"))
        raise ConnectionError("sync interrupted")  # a crash mid-iteration

    with pytest.raises(ConnectionError):
        store.replace(LIST, new_rows(), meta={"cursor": "new"})
    assert store.count(LIST) == 5
    assert all(store.lookup(c.code_sha256, LIST) == c for c in old)
    assert store.lookup(sha("NEW-0"), LIST) is None
    assert store.get_meta("cursor") == "old"
    # another connection sees the same whole old list (nothing half-written was committed)
    other = CredentialStore(store.path)
    try:
        assert other.count(LIST) == 5 and other.lookup(sha("NEW-0"), LIST) is None
    finally:
        other.close()
    # and the store is usable afterwards (the failed transaction was rolled back)
    store.replace(LIST, [Credential(code_sha256=sha("NEW-OK"))])
    assert store.count(LIST) == 1


def test_store_list_reload_that_fails_midway_keeps_the_old_list_whole(
        tmp_path: Path, store: CredentialStore) -> None:
    first = write_list(tmp_path, "code,label\n" + "".join(f"OLD-{i},o{i}\n" for i in range(10)))
    load_allowlist_into(store, first)
    broken = tmp_path / "broken.csv"  # good rows, then bytes that are not UTF-8 further down
    broken.write_bytes(b"code,label\n" + b"".join(f"NEW-{i},n{i}\n".encode() for i in range(3000))
                       + b"BAD-\xff\xfe,latin\n")
    with pytest.raises(AllowlistError) as info:
        load_allowlist_into(store, broken)
    assert str(broken) in str(info.value)
    assert store.count(LIST) == 10
    assert store.lookup(sha("OLD-9"), LIST) is not None
    assert store.lookup(sha("NEW-0"), LIST) is None


def test_store_list_duplicates_are_reported_when_loading(tmp_path: Path,
                                                         store: CredentialStore) -> None:
    path = write_list(tmp_path, "code,label\nDUP,first\nDUP,second\nONE,x\n")
    result = load_allowlist_into(store, path)
    assert result.problems == [f"{path}:3: the same code is listed again; row skipped"]
    dup = store.lookup(sha("DUP"), LIST)
    assert store.count(LIST) == 2 and dup is not None and dup.label == "first"


def test_store_upsert_adds_and_updates_rows(store: CredentialStore) -> None:
    store.replace(SERVER, [Credential(code_sha256=sha("A"), label="a")])
    store.upsert(SERVER, [Credential(code_sha256=sha("A"), label="a2", revoked=True),
                          Credential(code_sha256=sha("B"), label="b")], meta={"cursor": "7"})
    a = store.lookup(sha("A"), SERVER)
    assert a is not None and a.label == "a2" and a.revoked
    assert store.count(SERVER) == 2 and store.get_meta("cursor") == "7"


def test_store_meta_round_trip(store: CredentialStore) -> None:
    assert store.get_meta("etag") is None
    store.set_meta({"etag": "W/\"1\"", "synced_at": "2026-01-01T00:00:00Z"})
    assert store.get_meta("etag") == "W/\"1\""


def test_store_is_usable_from_several_threads(store: CredentialStore) -> None:
    store.replace(LIST, [Credential(code_sha256=sha(f"T{i}")) for i in range(20)])
    found: list[bool] = []
    errors: list[BaseException] = []

    def look() -> None:
        try:
            for i in range(20):
                found.append(store.lookup(sha(f"T{i}"), LIST) is not None)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=look) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not errors and len(found) == 80 and all(found)


def test_store_file_never_contains_a_raw_code(tmp_path: Path) -> None:
    raw = "RAW-SECRET-CODE-998877"
    path = write_list(tmp_path, f"code,label\n{raw},Alice\nOTHER-RAW-112233,Bob\n")
    state = tmp_path / "state"
    store = CredentialStore(state / "credentials.db")
    load_allowlist_into(store, path)
    store.close()
    files = [p for p in state.iterdir() if p.is_file()]
    assert files, "the store wrote nothing?"
    blob = b"".join(p.read_bytes() for p in files)  # the db and any -wal/-shm
    assert sha(raw).encode() in blob, "the check must be able to see what the store holds"
    assert b"Alice" in blob
    for secret in (raw, "OTHER-RAW-112233", "SECRET-CODE"):
        assert secret.encode() not in blob


def test_store_window_of_a_date_only_row_through_judge(tmp_path: Path,
                                                       store: CredentialStore) -> None:
    from gate.verify import judge

    day = date(2026, 3, 15)
    path = write_list(tmp_path, f"code,label,valid_from,valid_until\nW-1,Win,{day},{day}\n")
    load_allowlist_into(store, path)
    cred = store.lookup(sha("W-1"), LIST)
    assert cred is not None
    morning = local_ts(2026, 3, 15, 0, 0, 1)
    evening = local_ts(2026, 3, 15, 23, 59, 59)
    assert judge(cred, morning, "list").reason == "ok"
    assert judge(cred, evening, "list").reason == "ok"
    assert judge(cred, evening + 2, "list").reason == "expired"
    day_before = datetime.combine(day - timedelta(days=1), datetime.max.time()).timestamp()
    assert judge(cred, day_before, "list").reason == "not_yet_valid"
