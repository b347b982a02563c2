"""Config schema: defaults, every key's type and bounds, cross-key rules, describe() and the
`gate check-config` command. Every error must name the file, the [section] and the key."""

from __future__ import annotations

import dataclasses
import json
import math
import subprocess
import sys
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Literal

import pytest

from gate.config import (
    SECTIONS,
    Config,
    GateSection,
    IndicatorsSection,
    OccupancySection,
    describe,
    load_config,
    parse_config,
)
from gate.errors import ConfigError
from tests.support.daemon import REPO, toml_value


def write_config(tmp_path: Path, text: str, name: str = "gate.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems, "a ConfigError must list its problems"
    assert str(info.value) == "\n".join(info.value.problems)
    return info.value.problems


def section_fields() -> list[tuple[str, str, Any, dataclasses.Field[Any]]]:
    """(section, key, type hint, field) for every key of the schema, sections added later too."""
    out = []
    hints = typing.get_type_hints(Config)
    for section in SECTIONS:
        hint = hints[section]
        cls = next(a for a in typing.get_args(hint) if a is not type(None)) \
            if isinstance(hint, types.UnionType) else hint
        fhints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            out.append((section, f.name, fhints[f.name], f))
    return out


def strip_optional(hint: Any) -> Any:
    if isinstance(hint, types.UnionType):
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def wrong_type_value(hint: Any) -> Any:
    hint = strip_optional(hint)
    origin = typing.get_origin(hint)
    if origin is Literal:
        return "no-such-choice"
    if hint is bool:
        return "yes"
    if hint in (int, float):
        return "seven"
    if hint in (str, Path):
        return 7
    if origin is tuple:
        return 7
    if origin is dict:
        return 7
    raise AssertionError(f"the test does not know how to break {hint}")


def server_baseline(section: str, key: str) -> str:
    """[server] needs a url; give it one unless url is the key under test."""
    return 'url = "https://access.example.org"\n' if section == "server" and key != "url" else ""


# -- defaults -------------------------------------------------------------------------------

def test_config_empty_file_gives_documented_defaults(tmp_path: Path) -> None:
    path = write_config(tmp_path, "")
    cfg = load_config(path)
    assert cfg.gate.id == "gate" and cfg.gate.state_dir == Path("/var/lib/gate")
    assert cfg.camera.source == "picamera2" and cfg.camera.size == (640, 480)
    assert cfg.camera.fps == 15.0 and cfg.camera.loop is False
    assert cfg.decoder.backend == "zxing" and cfg.decoder.repeat_guard_s == 3.0
    assert cfg.gpio.pin_factory == "default"
    assert (cfg.door.relay_pin, cfg.door.relay_active_high, cfg.door.open_s) == (17, True, 4.0)
    assert cfg.door.granted_led_pin is None and cfg.door.buzzer_pin is None
    assert cfg.list.path == Path("/etc/gate/allowlist.csv")
    assert cfg.server is None, "without [server] the gate decides from the list alone"
    assert cfg.policy.offline == "cache" and cfg.policy.max_cache_age_s == 604800
    assert cfg.policy.status == {"green": "grant", "yellow": "staff", "red": "deny",
                                 "black": "deny"}
    assert cfg.source_path == path
    assert cfg.journal_path == Path("/var/lib/gate/journal.db")
    assert cfg.credentials_path == Path("/var/lib/gate/credentials.db")


def test_config_server_section_gets_defaults_for_unset_keys(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, '[server]\nurl = "https://a.example"\n'))
    assert cfg.server is not None
    assert cfg.server.url == "https://a.example"
    assert cfg.server.timeout_s == 0.8 and cfg.server.sync_interval_s == 60
    assert cfg.server.token_file == Path("/etc/gate/token")


def test_config_every_key_has_a_description_and_a_valid_default() -> None:
    for section, key, _hint, f in section_fields():
        assert f.metadata.get("doc"), f"[{section}] {key} has no description"
    defaults = Config()
    assert defaults.door.relay_pin is not None


def test_config_values_are_converted_to_their_types(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, "[door]\nopen_s = 2\n[camera]\nfps = 30\n"))
    assert cfg.door.open_s == 2.0 and isinstance(cfg.door.open_s, float)
    assert isinstance(cfg.camera.fps, float)


# -- every key: type, bounds ----------------------------------------------------------------

@pytest.mark.parametrize(("section", "key", "hint"),
                         [(s, k, h) for s, k, h, _f in section_fields()],
                         ids=[f"{s}.{k}" for s, k, _h, _f in section_fields()])
def test_config_wrong_type_names_file_section_and_key(tmp_path: Path, section: str, key: str,
                                                      hint: Any) -> None:
    bad = wrong_type_value(hint)
    path = write_config(tmp_path, f"[{section}]\n{server_baseline(section, key)}"
                                  f"{key} = {toml_value(bad)}\n")
    problems = problems_of(path)
    about = [p for p in problems if f"[{section}] {key}:" in p and "must be" in p]
    assert len(about) == 1, problems
    assert about[0].startswith(f"{path}: "), about[0]


def bound_cases() -> list[tuple[str, str, Any, str]]:
    cases = []
    for section, key, hint, f in section_fields():
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        base = strip_optional(hint)
        if typing.get_origin(base) is tuple:  # size = [w, h]: each number is bounded
            if lo is not None:
                cases.append((section, key, [lo - 1, max(lo, 16)], ">="))
            if hi is not None:
                cases.append((section, key, [hi, hi + 1], "<="))
            continue
        if base not in (int, float):
            continue
        if lo is not None:
            cases.append((section, key, base(lo - 1) if base is int else lo - 0.5, ">="))
        if hi is not None:
            cases.append((section, key, base(hi + 1) if base is int else hi + 0.5, "<="))
    return cases


@pytest.mark.parametrize(("section", "key", "value", "word"), bound_cases(),
                         ids=[f"{s}.{k}{w}" for s, k, _v, w in bound_cases()])
def test_config_out_of_bounds_names_file_section_and_key(tmp_path: Path, section: str, key: str,
                                                         value: Any, word: str) -> None:
    path = write_config(tmp_path, f"[{section}]\n{server_baseline(section, key)}"
                                  f"{key} = {toml_value(value)}\n")
    problems = problems_of(path)
    about = [p for p in problems if f"[{section}] {key}:" in p]
    assert len(about) == 1 and about[0].startswith(f"{path}: "), problems
    assert f"must be {word}" in about[0]


def test_config_bounds_are_inclusive(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, "[door]\nrelay_pin = 0\nbuzzer_pin = 53\n"
                                             "[camera]\nfps = 120\nsize = [16, 4096]\n"))
    assert (cfg.door.relay_pin, cfg.door.buzzer_pin) == (0, 53)
    assert cfg.camera.fps == 120 and cfg.camera.size == (16, 4096)


@pytest.mark.parametrize(("text", "key"), [
    ("[door]\nopen_s = nan\n", "[door] open_s"),
    ("[camera]\nfps = nan\n", "[camera] fps"),
    ("[decoder]\nrepeat_guard_s = nan\n", "[decoder] repeat_guard_s"),
    ("[policy]\nmax_cache_age_s = nan\n", "[policy] max_cache_age_s"),
])
def test_config_nan_is_refused(tmp_path: Path, text: str, key: str) -> None:
    problems = problems_of(write_config(tmp_path, text))
    assert any(key in p and "nan" in p for p in problems), problems


@pytest.mark.parametrize(("text", "key", "word"), [
    ("[door]\nrelay_pin = true\n", "[door] relay_pin", "number"),        # a bool is no number
    ("[door]\nrelay_pin = 17.5\n", "[door] relay_pin", "whole number"),
    ("[camera]\nsize = [640]\n", "[camera] size", "list of 2"),
    ("[camera]\nsize = [640.5, 480]\n", "[camera] size", "whole number"),
    ('[gate]\nstate_dir = ""\n', "[gate] state_dir", "non-empty path"),
    ('[policy.status]\ngreen = "open"\n', "[policy] status", "green"),
    ('[camera]\nsource = "webcam"\n', "[camera] source", "'picamera2', 'files'"),
])
def test_config_value_errors_say_what_is_expected(tmp_path: Path, text: str, key: str,
                                                  word: str) -> None:
    path = write_config(tmp_path, text)
    problems = problems_of(path)
    assert any(p.startswith(f"{path}: {key}:") and word in p for p in problems), problems


def test_config_unknown_key_is_reported_with_the_known_ones(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[door]\nrelay_pinn = 17\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: [door] relay_pinn: unknown key")
    assert "relay_pin" in problem.split("known:")[1]


def test_config_unknown_section_is_reported(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[camra]\nfps = 10\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: [camra]: unknown section")
    assert "camera" in problem


def test_config_section_that_is_not_a_table_is_reported(tmp_path: Path) -> None:
    path = write_config(tmp_path, "camera = 5\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: [camera]:") and "table" in problem


def test_config_reports_every_problem_at_once(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[camera]\nfps = 0\nsource = 3\n[door]\nopen_s = -1\n"
                                  "relay_pin = 99\nbogus = 1\n[nope]\n")
    problems = problems_of(path)
    for key in ("[camera] fps", "[camera] source", "[door] open_s", "[door] relay_pin",
                "[door] bogus", "[nope]"):
        assert sum(key in p for p in problems) == 1, (key, problems)
    assert all(p.startswith(f"{path}: ") for p in problems)
    assert len(problems) == 6


def test_config_invalid_toml_names_the_file(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[door\nrelay_pin = 17\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: not valid TOML")


def test_config_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    (problem,) = problems_of(path)
    assert problem == f"{path}: file not found"


def test_config_non_utf8_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes('[gate]\nid = "Gar\xe7on"\n'.encode("latin-1"))
    (problem,) = problems_of(path)
    assert problem == f"{path}:2: not UTF-8 text (byte 16)"


# -- malformed files: each a ConfigError naming file, key and problem, never anything else --

BIG = "9" * 400


@pytest.mark.parametrize(("text", "where", "word"), [
    (f"[policy]\nmax_cache_age_s = {BIG}\n", "[policy] max_cache_age_s", "far outside"),
    (f"[indicators]\ngranted_led = [{BIG}, 0, 1]\n", "[indicators] granted_led", "far outside"),
    ("[policy]\nmax_cache_age_s = 1e400\n", "[policy] max_cache_age_s", "finite"),  # inf
    ("[policy]\nmax_cache_age_s = inf\n", "[policy] max_cache_age_s", "finite"),
    ("[door]\nopen_s = -inf\n", "[door] open_s", "finite"),
    ("[indicators]\nfault_led = [nan, 1]\n", "[indicators] fault_led", "finite"),
    ("[policy]\nmax_cache_age_s = 1e12\n", "[policy] max_cache_age_s", "<="),
    (f'[gate]\nid = "{"x" * 5000}"\n', "[gate] id", "at most 4096"),
    ('[gate]\nid = "a\\u0000b"\n', "[gate] id", "control characters"),
    ('[list]\npath = "/etc/a\\u0000b"\n', "[list] path", "control characters"),
    ('[gate]\nid = "line\\nforged"\n', "[gate] id", "control characters"),
    ("[gate]\nid = [[[[[[[[1]]]]]]]]\n", "[gate] id", "string"),
    ("[camera]\nsource = [1]\n", "[camera] source", "one of"),   # unhashable vs the choices
    ("[policy.status]\ngreen = {a = {b = 1}}\n", "[policy] status", "green"),
    ("[gate]\nid = 1979-05-27T07:32:00Z\n", "[gate] id", "string"),
])
def test_config_malformed_value_names_file_key_and_problem(tmp_path: Path, text: str, where: str,
                                                           word: str) -> None:
    path = write_config(tmp_path, text)
    problems = problems_of(path)
    assert any(p.startswith(f"{path}: {where}:") and word in p for p in problems), problems
    assert all(len(p) < 1000 for p in problems), "a huge value must not be echoed whole"


@pytest.mark.parametrize(("content", "word"), [
    ("a = " + "[" * 5000 + "]" * 5000 + "\n", "nested too deeply"),
    ("a = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n", "not valid TOML"),
    ("a = 1" + "0" * 5000 + "\n", "not valid TOML"),      # past Python's int digit limit
    ("# " + "x" * (1 << 20) + "\n", "larger than"),
])
def test_config_malformed_file_names_the_file(tmp_path: Path, content: str, word: str) -> None:
    path = write_config(tmp_path, content)
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}") and word in problem, problem[:300]


def test_config_directory_and_fifo_are_config_errors(tmp_path: Path) -> None:
    import os
    (problem,) = problems_of(tmp_path)
    assert problem.startswith(f"{tmp_path}: ") and "directory" in problem.lower()
    fifo = tmp_path / "fifo.toml"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a writer, so opening it cannot hang
    try:
        (problem,) = problems_of(fifo)
    finally:
        os.close(fd)
    assert problem == f"{fifo}: not a regular file"


def test_config_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    import os
    locked = write_config(tmp_path, "[gate]\n")
    locked.chmod(0)
    if os.geteuid() == 0:
        pytest.skip("running as root: mode 0 is still readable")
    (problem,) = problems_of(locked)
    assert problem.startswith(f"{locked}: cannot read") and "ermission" in problem


NASTY: list[Any] = ["/", "~", "a\x00", "x" * 5000, "https://x", "http://127.0.0.1", "mock",
                    "files", "zxing", "grant", "cache", 10 ** 400, -(10 ** 400), 10 ** 16,
                    math.inf, -math.inf, math.nan, 1e300, -1e300, 0, -1, True, [], {},
                    [math.inf, math.nan, 10 ** 400], [[[[1]]]], {"a": {"b": [1]}}]


def check_parse(raw: dict[str, Any], path: Path) -> None:
    """parse_config returns a usable Config (finite numbers only) or raises ConfigError whose
    every problem names the file; anything else escaping fails the test."""
    try:
        cfg = parse_config(raw, path)
    except ConfigError as exc:
        assert exc.problems and all(p.startswith(str(path)) for p in exc.problems)  # noqa: PT017
        return
    for section, key, _, _ in section_fields():
        part = getattr(cfg, section)
        value = getattr(part, key) if part is not None else None
        for v in value if isinstance(value, tuple) else (value,):
            assert not isinstance(v, float) or math.isfinite(v), (section, key, v)


@pytest.mark.slow
def test_config_every_key_with_every_nasty_value_gives_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "gate.toml"
    server = {"url": "https://x"}
    for section, key, _, _ in section_fields():
        for value in NASTY:
            base = {"server": dict(server)} if section == "server" else {}
            base.setdefault(section, {})[key] = value
            check_parse(base, path)


@pytest.mark.slow
def test_config_loader_only_ever_raises_config_error_hypothesis(tmp_path: Path) -> None:
    """Property: whatever the parsed TOML holds (any section, key and value of any TOML type,
    nested), parse_config returns a usable Config or raises ConfigError, nothing else."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    pairs = st.sampled_from([(s, k) for s, k, _, _ in section_fields()]
                            + [("nope", "x"), ("gate", "bogus"), ("gate", "")])
    scalars = st.one_of(
        st.sampled_from(NASTY), st.booleans(), st.sampled_from(NASTY), st.integers(),
        st.sampled_from(NASTY), st.text(max_size=20),
        st.floats(allow_nan=True, allow_infinity=True), st.datetimes(), st.dates(), st.times())
    values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=8), inner, max_size=3),
                          max_leaves=10)
    entries = st.lists(st.tuples(pairs, values), max_size=8)
    whole = st.dictionaries(st.sampled_from(list(SECTIONS)), values, max_size=2)
    path = tmp_path / "gate.toml"

    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(entries, whole)
    def check(items: list[tuple[tuple[str, str], Any]], sections: dict[str, Any]) -> None:
        raw: dict[str, Any] = {}
        for (section, key), value in items:
            raw.setdefault(section, {})[key] = value
        for section, value in sections.items():  # a section that is not a table at all
            raw.setdefault(section, value)
        check_parse(raw, path)

    check()


@pytest.mark.slow
def test_config_loader_only_ever_raises_config_error_on_mutated_bytes(tmp_path: Path) -> None:
    """Seeded byte mutations of the example config through load_config: ConfigError or a
    Config, never a traceback."""
    import random
    rng = random.Random(7)
    base = (REPO / "config" / "gate.example.toml").read_bytes()
    inserts = [b"\x00", b"\xff", b"nan", b"inf", b"9" * 30, b"[", b"]", b"{", b"}", b'"',
               b"\n[x]\n", b"=", b"1e400", b"-", b"\\u0000", b"'''", b"[[a]]\n",
               b"1" + b"0" * 400, b"[" * 3000, b"1" + b"0" * 5000]
    path = tmp_path / "gate.toml"
    for _ in range(300):
        data = bytearray(base)
        values = [i + 2 for i in range(len(data)) if data[i:i + 2] == b"= "]
        for _ in range(rng.randint(1, 6)):
            at = rng.choice(values) if rng.random() < 0.5 else rng.randrange(len(data) + 1)
            at = min(at, len(data))
            if rng.random() < 0.5:
                data[at:at + rng.randint(1, 8)] = rng.choice(inserts)
            else:
                del data[at:at + rng.randint(1, 20)]
        path.write_bytes(bytes(data))
        try:
            load_config(path)
        except ConfigError as exc:  # a clear error: every problem names the file
            assert exc.problems and all(str(path) in p for p in exc.problems)  # noqa: PT017


# -- paths ----------------------------------------------------------------------------------

def test_config_relative_paths_resolve_against_the_config_dir(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    conf_dir = tmp_path / "etc"
    conf_dir.mkdir()
    write_config(conf_dir, '[gate]\nstate_dir = "state"\n[camera]\npath = "frames/*.png"\n'
                           '[list]\npath = "../lists/allow.csv"\n'
                           '[server]\nurl = "https://a.example"\ntoken_file = "/abs/token"\n')
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config(Path("../etc/gate.toml"))  # a relative config path, from another cwd
    assert cfg.gate.state_dir == conf_dir.resolve() / "state"
    assert cfg.camera.path == conf_dir.resolve() / "frames/*.png"
    assert cfg.list.path == conf_dir.resolve() / "../lists/allow.csv"
    assert cfg.server is not None and cfg.server.token_file == Path("/abs/token")
    assert cfg.journal_path == conf_dir.resolve() / "state" / "journal.db"


def test_config_relative_default_paths_resolve_against_the_config_dir(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir("/")  # as under systemd: the cwd must not matter
    for text in ("", '[camera]\nsource = "files"\n'):  # section absent, and present
        cfg = load_config(write_config(tmp_path, text))
        assert cfg.camera.path.is_absolute()
        assert cfg.camera.path == tmp_path.resolve() / "frames"
        assert f'path = "{tmp_path.resolve() / "frames"}"' in describe(cfg)


def test_config_home_in_paths_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    cfg = load_config(write_config(tmp_path, '[gate]\nstate_dir = "~/gate-state"\n'))
    assert cfg.gate.state_dir == tmp_path / "home" / "gate-state"


# -- cross-key rules ------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://access.example.org", "https://10.0.0.5:8443/base", "http://127.0.0.1:8080",
    "http://127.3.4.5", "http://localhost:9000", "http://[::1]:8080",
])
def test_config_server_url_accepted(tmp_path: Path, url: str) -> None:
    cfg = load_config(write_config(tmp_path, f"[server]\nurl = {json.dumps(url)}\n"))
    assert cfg.server is not None and cfg.server.url == url


@pytest.mark.parametrize(("url", "word"), [
    ("http://access.example.org", "loopback"),
    ("http://10.0.0.5:8080", "loopback"),
    ("http://localhost.evil.example", "loopback"),
    ("http://0.0.0.0:8080", "loopback"),
    ("ftp://access.example.org", "https://"),
    ("access.example.org", "https://"),
    ("https://", "https://"),
    ("", "required"),
])
def test_config_server_url_refused(tmp_path: Path, url: str, word: str) -> None:
    path = write_config(tmp_path, f"[server]\nurl = {json.dumps(url)}\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: [server] url:") and word in problem


def test_config_server_section_without_url_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[server]\ntimeout_s = 1.0\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: [server] url:") and "required" in problem


@pytest.mark.parametrize("other", ["granted_led_pin", "denied_led_pin", "buzzer_pin"])
def test_config_pin_used_twice_is_refused(tmp_path: Path, other: str) -> None:
    path = write_config(tmp_path, f"[door]\nrelay_pin = 5\n{other} = 5\n")
    (problem,) = problems_of(path)
    assert problem.startswith(f"{path}: [door] {other}:")
    assert "relay_pin" in problem and "5" in problem


def test_config_two_indicator_pins_sharing_a_pin_is_refused(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[door]\ngranted_led_pin = 22\ndenied_led_pin = 22\n")
    (problem,) = problems_of(path)
    assert "[door] denied_led_pin" in problem and "granted_led_pin" in problem


def test_config_distinct_pins_are_fine(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, "[door]\nrelay_pin = 17\ngranted_led_pin = 22\n"
                                             "denied_led_pin = 23\nbuzzer_pin = 24\n"))
    assert (cfg.door.granted_led_pin, cfg.door.denied_led_pin, cfg.door.buzzer_pin) == (22, 23, 24)


# -- describe() -----------------------------------------------------------------------------

def test_config_describe_lists_every_section_and_key_with_its_doc(tmp_path: Path) -> None:
    cfg = load_config(write_config(tmp_path, '[door]\nrelay_pin = 5\nopen_s = 2.5\n'))
    text = describe(cfg)
    for section in SECTIONS:
        assert f"[{section}]" in text, section
    assert "# [server] not set" in text
    assert "relay_pin = 5  # BCM number of the relay output" in text
    assert "open_s = 2.5  #" in text
    assert "# granted_led_pin = (unset)" in text
    assert 'size = [640, 480]' in text


def test_config_describe_output_is_toml_that_loads_back_to_the_same_config(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[gate]\nid = "lobby \\"north\\""\nstate_dir = "st"\n'
                                  '[camera]\nsource = "files"\nsize = [320, 240]\nloop = true\n'
                                  '[door]\nrelay_active_high = false\nbuzzer_pin = 24\n'
                                  '[server]\nurl = "http://127.0.0.1:8080"\n'
                                  '[policy.status]\ngreen = "grant"\nblue = "staff"\n')
    cfg = load_config(path)
    text = describe(cfg)
    again = parse_config(tomllib.loads(text), path)
    assert again == cfg


# -- the check-config command ---------------------------------------------------------------

def run_gate(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gate", *args], capture_output=True, text=True,
                          timeout=60, cwd=cwd or REPO)


def _allowlist(tmp_path: Path) -> str:
    """A [list] section naming an empty allowlist: check-config reads it, as run does."""
    (tmp_path / "allow.csv").write_text("code,label\n")
    return f'[list]\npath = "{tmp_path / "allow.csv"}"\n'


def test_config_check_config_cli_prints_effective_config_and_exits_0(tmp_path: Path) -> None:
    path = write_config(tmp_path, '[gate]\nid = "lobby-north"\nstate_dir = "state"\n'
                                  '[door]\nopen_s = 6\n' + _allowlist(tmp_path))
    proc = run_gate("check-config", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    assert f"{path}: OK" in proc.stdout
    assert 'id = "lobby-north"' in proc.stdout
    assert f'state_dir = "{tmp_path / "state"}"' in proc.stdout
    assert "open_s = 6.0" in proc.stdout
    assert "relay_pin = 17" in proc.stdout  # defaults are shown too


def test_config_check_config_cli_lists_the_occupancy_keys_with_their_meanings(
        tmp_path: Path) -> None:
    path = write_config(tmp_path, '[gate]\nstate_dir = "state"\nsite = "hq"\n'
                                  'direction = "out"\n[occupancy]\nlease_interval_s = 15\n'
                        + _allowlist(tmp_path))
    proc = run_gate("check-config", "--config", str(path))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    sections = {"gate": ("site", "direction"), "indicators": ("full_led", "full_buzzer"),
                "occupancy": tuple(f.name for f in dataclasses.fields(OccupancySection))}
    assert {"lease_interval_s", "passback_max_keys"} <= set(sections["occupancy"])
    for section, keys in sections.items():
        start = lines.index(f"[{section}]")
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("[")),
                   len(lines))
        for key in keys:
            owner = {"gate": GateSection, "indicators": IndicatorsSection,
                     "occupancy": OccupancySection}[section]
            doc = {f.name: f.metadata["doc"] for f in dataclasses.fields(owner)}[key]
            found = [ln for ln in lines[start:end] if ln.split(" = ")[0] == key]
            assert len(found) == 1 and found[0].endswith(f"  # {doc}"), (section, key)
    # the values given, and the meanings an installer needs, in words
    assert 'site = "hq"  # the site this door belongs to, for occupancy' in proc.stdout
    assert 'direction = "out"  # where this door leads' in proc.stdout
    assert "lease_interval_s = 15.0  # how often the lease is renewed" in proc.stdout
    assert "passback_max_keys = 100000  # timed anti-passback offline" in proc.stdout


def test_config_check_config_cli_names_the_bad_key_and_exits_2(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[door]\nopen_s = 0\nrelay_pin = 17\nbuzzer_pin = 17\n")
    proc = run_gate("check-config", "--config", str(path))
    assert proc.returncode == 2
    assert f"{path}: [door] open_s: must be >= 0.1" in proc.stderr
    assert f"{path}: [door] buzzer_pin:" in proc.stderr
    assert "[door]\n" not in proc.stdout, "a bad config must not be printed as effective"


def test_config_check_config_cli_missing_file_exits_2(tmp_path: Path) -> None:
    proc = run_gate("check-config", "--config", str(tmp_path / "none.toml"))
    assert proc.returncode == 2
    assert str(tmp_path / "none.toml") in proc.stderr


def test_config_float_bounds_helper_sanity() -> None:
    # the bound cases above must really cover the float keys (guards the generator itself)
    keys = {f"{s}.{k}" for s, k, _v, _w in bound_cases()}
    assert {"door.open_s", "camera.fps", "door.relay_pin", "camera.size"} <= keys
    assert not math.isnan(Config().door.open_s)
