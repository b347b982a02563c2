"""File campaigns: malformed allowlists through the allowlist loader, malformed configs
through the config loader (and a sample through `gate check-config` as a subprocess).

Allowlists: a clear AllowlistError or a load; never another exception; a failed load keeps
the previous list; no code is granted unless a well-formed, currently valid row lists it.
Configs: a clear ConfigError or a config whose numbers are finite and within their bounds
and whose server URL is https (http only on loopback); `check-config` exits 0 or 2.

    python -m fuzz.files [allowlists|configs ...] [--allowlists 3000] [--configs 5000]
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import math
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fuzz.common import Result, progress, report, rng_for, timed_result
from fuzz.world import DAY, NOW, base_sections, iso, scratch_dir, sha, write_toml
from gate.config import Config, load_config
from gate.errors import AllowlistError, ConfigError
from gate.verify import build_chain
from gate.verify.credentials import CredentialStore, load_allowlist_into

BAD_DATES = ["2026-13-01", "2026-02-30", "tomorrow", "NaN", "1e9", "99999-01-01",
             "2026-01-01T25:00", "2026-01-01T10:00+25:00", "--", "2026/01/01", "\x00",
             "2026-01-01T00:00:00ZZ", "0000-00-00", "１２３４-05-06"]


def allowlist_text(rng: random.Random, n: int) -> tuple[str, list[str], list[str]]:
    """The CSV, the codes it lists validly, and the codes that must not be granted."""
    good, bad, lines = [], [], ["code,label,valid_from,valid_until"]
    for i in range(rng.randrange(0, 30)):
        code = f"A{n}-{i}-{rng.getrandbits(24):x}"
        kind = rng.randrange(6)
        if kind <= 1:
            lines.append(f"{code},ok {i},{iso(NOW - DAY)},{iso(NOW + 30 * DAY)}")
            good.append(code)
        elif kind == 2:
            lines.append(f"{code},old,{iso(NOW - 9 * DAY)},{(iso(NOW - 2 * DAY))[:10]}")
            bad.append(code)
        elif kind == 3:
            cols = [iso(NOW - DAY), iso(NOW + DAY)]
            cols[rng.randrange(2)] = rng.choice(BAD_DATES)
            lines.append(f"{code},bad date,{cols[0]},{cols[1]}")
            bad.append(code)
        elif kind == 4:
            lines.append(f"{code},backwards,{iso(NOW + DAY)},{iso(NOW - DAY)}")
            bad.append(code)
        else:
            lines.append(f"{code},future,{iso(NOW + DAY)},")
            bad.append(code)
    text = "\n".join(lines) + "\n"
    return mutate(rng, text), good, bad


def mutate(rng: random.Random, text: str) -> str:
    k = rng.randrange(12)
    if k == 0:
        i = rng.randrange(len(text) + 1)
        return text[:i] + rng.choice(['"', "\x00", "\r", ",", "\ufeff", "\\", "#", "\u2028"]) \
            + text[i:]
    if k == 1:
        return text[:rng.randrange(len(text) + 1)]
    if k == 2:
        return text.replace(",", rng.choice([";", "\t", ", ", ",,"]))
    if k == 3:
        return "\ufeff" + text.replace("\n", "\r\n")
    if k == 4:
        return text.split("\n", 1)[1] if "\n" in text else ""
    if k == 5:
        return text.replace("code,", rng.choice(["Code ,", "code_sha256,", "code,code,", ""]), 1)
    if k == 6:
        return text + "x" * rng.choice([10_000, 200_000]) + "\n"
    if k == 7:
        return text + '"' + "multi\nline" * 50 + "\n"
    return text


def run_allowlists(n: int, seed: int) -> Result:
    result = Result("allowlists")
    with timed_result(result), scratch_dir() as tmp:
        root = Path(tmp)
        path = root / "allow.csv"
        path.write_text("code,label\nSEED,seed\n")
        cfg = load_config(write_toml(root / "gate.toml", base_sections(root, path)))
        store = CredentialStore(cfg.credentials_path)
        chain = build_chain(cfg, store, None)
        load_allowlist_into(store, path)
        kept = ["SEED"]  # codes the list in force grants

        def grants(code: str) -> bool:
            return chain.check(sha(code.encode()), code.encode(), NOW).verdict == "grant"

        for i in range(n):
            rng = rng_for(seed, "allowlist", i)
            text, good, bad = allowlist_text(rng, i)
            raw = text.encode("utf-8", errors="surrogatepass")
            k = rng.randrange(10)
            if k == 0:
                raw = raw.replace(b"o", b"\xff", 1)  # invalid UTF-8
            elif k == 1:
                raw = text.encode("utf-16")
            elif k == 2:
                raw = rng.randbytes(rng.randrange(1, 4000))
            path.write_bytes(raw)
            try:
                load_allowlist_into(store, path)
                loaded = True
            except AllowlistError:
                loaded = False
                result.info["lists refused whole (AllowlistError)"] += 1
            except Exception as exc:
                result.crashed(f"allowlist {i}", exc)
                continue
            try:
                if not loaded and kept and not grants(kept[0]):
                    result.fail("previous list lost on a failed load", f"allowlist {i}")
                for code in bad + [f"NEVER-{i}"]:
                    if grants(code):
                        result.fail("wrong grants", f"allowlist {i}: a {code!r} row")
                if loaded:
                    kept = [c for c in good if grants(c)]
                    result.info["valid rows presented"] += len(good)
                    result.info["of which granted"] += len(kept)
            except Exception as exc:
                result.crashed(f"deciding after allowlist {i}", exc)
            progress(i, n, 1000)
        store.close()
        result.cases = n
    return result


def config_text(rng: random.Random, root: Path) -> str:
    sections: dict[str, dict[str, Any]] = base_sections(root, root / "allow.csv")
    (root / "token").write_text("t\n")
    sections["server"] = {"url": "https://gate.example.org", "token_file": str(root / "token")}
    for _ in range(rng.randrange(1, 4)):
        section_fields = {f.name: f.type for f in dataclasses.fields(Config)
                          if f.name != "source_path"}
        name = rng.choice(sorted(section_fields))
        cls = section_fields[name]
        keys: list[str] = [f.name for f in dataclasses.fields(cls)] \
            if dataclasses.is_dataclass(cls) else ["green", "yellow"]
        key = rng.choice(keys + ["no_such_key"])
        value = rng.choice([None, True, -1, 0, 10**30, -10**30, 1e308, "", "x" * 5000,
                            "nan", "inf", "-inf", [1, 2], [], {"a": 1}, "\x00", "grant",
                            "http://example.org", "http://127.0.0.1.evil.org",
                            "http://localhost@evil.org", "https://", "ftp://127.0.0.1",
                            "http://[::1]:8080", "http://0x7f.1", "/dev/null", 3.5, 99999])
        sections.setdefault(name, {})[key] = value
    lines = []
    for name, table in sections.items():
        lines.append(f"[{name}]")
        for k, v in table.items():
            if v is None:
                continue
            if isinstance(v, float) and v == 1e308:
                lines.append(f"{k} = {rng.choice(['nan', 'inf', '-inf', '1e308'])}")
            elif isinstance(v, str) and v in ("nan", "inf", "-inf"):
                lines.append(f"{k} = {v}")
            else:
                lines.append(f"{k} = {_toml(v)}")
    text = "\n".join(lines) + "\n"
    mode = rng.randrange(10)
    if mode == 0:
        return text[:rng.randrange(len(text))]
    if mode == 1:
        return text + "[gate]\nid = \"again\"\n"
    if mode == 2:
        return text + "deep = " + "[" * 5000 + "]" * 5000 + "\n"
    if mode == 3:
        return "[[gate]]\n" + text
    return text


def _toml(v: Any) -> str:
    import json

    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + "}"
    return json.dumps(v)


def loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def accepted_problems(cfg: Config) -> list[str]:
    """What an accepted config must not hold, checked through the schema's own metadata."""
    out = []
    for section in dataclasses.fields(cfg):
        value = getattr(cfg, section.name)
        if not dataclasses.is_dataclass(value):
            continue
        for f in dataclasses.fields(value):
            v = getattr(value, f.name)
            if isinstance(v, float) and not math.isfinite(v):
                out.append(f"[{section.name}] {f.name} = {v}")
            lo, hi = f.metadata.get("min"), f.metadata.get("max")
            if isinstance(v, (int, float)) and not isinstance(v, bool) and (
                    (lo is not None and v < lo) or (hi is not None and v > hi)):
                out.append(f"[{section.name}] {f.name} = {v} out of [{lo}, {hi}]")
    if cfg.server is not None:
        url = urlsplit(cfg.server.url)
        if url.scheme != "https" and not (url.scheme == "http" and loopback(url.hostname)):
            out.append(f"[server] url {cfg.server.url!r}")
    return out


def run_configs(n: int, subprocesses: int, seed: int) -> Result:
    result = Result("configs")
    with timed_result(result), scratch_dir() as tmp:
        root = Path(tmp)
        (root / "allow.csv").write_text("code,label\nX,x\n")
        path = root / "gate.toml"
        step = max(1, n // subprocesses) if subprocesses else 0
        for i in range(n):
            rng = rng_for(seed, "config", i)
            text = config_text(rng, root)
            if rng.random() < 0.03:
                path.write_bytes(rng.randbytes(rng.randrange(1, 2000)))
            else:
                path.write_text(text, encoding="utf-8", errors="surrogatepass")
            try:
                cfg = load_config(path)
                result.info["configs accepted"] += 1
                for problem in accepted_problems(cfg):
                    result.fail("junk accepted", problem)
            except ConfigError:
                result.info["configs refused (ConfigError)"] += 1
            except Exception as exc:
                result.crashed(f"config {i}", exc)
            if step and i % step == 0:
                check_config_subprocess(path, result)
            progress(i, n, 1000)
        result.cases = n
    return result


def check_config_subprocess(path: Path, result: Result) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run([sys.executable, "-m", "gate", "check-config", "--config", str(path)],
                          capture_output=True, text=True, env=env, timeout=60)
    result.info["gate check-config runs"] += 1
    if proc.returncode not in (0, 2) or "Traceback" in proc.stderr + proc.stdout:
        result.fail("check-config crashed", f"exit {proc.returncode}: {proc.stderr[-200:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz.files", description=__doc__)
    parser.add_argument("kinds", nargs="*", metavar="KIND", help="allowlists and/or configs")
    parser.add_argument("--allowlists", type=int, default=3_000)
    parser.add_argument("--configs", type=int, default=5_000)
    parser.add_argument("--check-config-runs", type=int, default=100,
                        help="configs also run through `gate check-config` (a subprocess)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="200 of each, 5 subprocesses")
    args = parser.parse_args(argv)
    if args.quick:
        args.allowlists, args.configs, args.check_config_runs = 200, 200, 5
    kinds = args.kinds or ["allowlists", "configs"]
    if set(kinds) - {"allowlists", "configs"}:
        parser.error("KIND is allowlists or configs")
    rc = 0
    if "allowlists" in kinds:
        rc |= report(run_allowlists(args.allowlists, args.seed),
                     ["uncaught exceptions", "wrong grants", "previous list lost on a failed load"])
        print(flush=True)
    if "configs" in kinds:
        rc |= report(run_configs(args.configs, args.check_config_runs, args.seed),
                     ["uncaught exceptions", "junk accepted", "check-config crashed"])
    return rc


if __name__ == "__main__":
    sys.exit(main())
