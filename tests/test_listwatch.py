"""Live allowlist reloads: a refused file keeps the previous list, is journaled as
`list_error` and shows a fault until a good file loads; at start it exits 2 with the reason."""

from __future__ import annotations

import threading
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from gate.journal import Journal
from gate.verify.credentials import LIST, CredentialStore, hash_code
from gate.verify.listwatch import ListWatcher
from tests.support.daemon import run_gate
from tests.support.gatehelpers import (
    ALICE,
    events_where,
    running_gate,
    setup_config,
    wait_event,
    wait_until,
)

GOOD = "code,label,valid_from,valid_until\nOLD-1,Old,,2099-12-31\n"
MISSPELT = "code,label,valid_from,valid_till\nNEW-1,New,,2000-01-01\n"


def test_listwatch_refused_reload_keeps_the_list_journals_and_shows_a_fault(tmp_path: Path) -> None:
    path = tmp_path / "allow.csv"
    path.write_text(GOOD, encoding="utf-8")
    store = CredentialStore(tmp_path / "state" / "credentials.db")
    journal = Journal(tmp_path / "state" / "journal.db", "t")
    faults: list[bool] = []
    changed = threading.Event()

    def on_fault(on: bool) -> None:
        faults.append(on)
        changed.set()

    watcher = ListWatcher(store, path, 3600, journal, on_fault=on_fault)
    try:
        watcher.load_now()
        watcher.start()
        def list_errors() -> list[dict[str, object]]:
            return [e for e in journal.events(kind="system") if e["event"] == "list_error"]

        for n, bad in enumerate((MISSPELT, "code\x00,label\n", ""), 1):
            path.write_text(bad, encoding="utf-8")
            changed.clear()
            watcher.trigger()
            assert changed.wait(10), "no fault reported"
            assert faults[-1] is True
            wait_until(lambda n=n: len(list_errors()) == n, what=f"list_error {n}")
            assert store.lookup(hash_code("OLD-1"), LIST) is not None
            assert store.lookup(hash_code("NEW-1"), LIST) is None
        errors = list_errors()
        assert len(errors) == 3 and str(path) in str(errors[0]["error"])
        assert "valid_until" in errors[0]["error"]
        path.write_text(GOOD.replace("OLD-1", "NEW-2"), encoding="utf-8")
        changed.clear()
        watcher.trigger()
        assert changed.wait(10) and faults[-1] is False  # a good file clears the fault
        assert store.lookup(hash_code("NEW-2"), LIST) is not None
    finally:
        watcher.close()
        store.close()
        journal.close()


def test_listwatch_refused_reload_is_a_gate_fault_in_the_status(tmp_path: Path) -> None:
    config = setup_config(tmp_path, list={"watch_interval_s": 0.1})
    allow = tmp_path / "allow.csv"
    with running_gate(config, MockFactory()) as gate:
        allow.write_text(MISSPELT, encoding="utf-8")
        wait_event(tmp_path / "state", kind="system", event="list_error")
        wait_until(lambda: "allowlist" in gate.faults, what="the allowlist fault")
        assert gate.status_snapshot()["state"] == "fault"
        assert gate.store.lookup(hash_code(ALICE), LIST) is not None  # the old list still holds
        allow.write_text(f"code,label\n{ALICE},Alice\n", encoding="utf-8")
        wait_until(lambda: "allowlist" not in gate.faults, what="the fault to clear")
    assert events_where(tmp_path / "state", event="list_loaded")


def test_listwatch_refused_list_at_start_exits_2_with_the_reason(tmp_path: Path) -> None:
    config = setup_config(tmp_path)
    (tmp_path / "allow.csv").write_text(MISSPELT, encoding="utf-8")
    proc = run_gate(config)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert f"{tmp_path / 'allow.csv'}:1:" in out and "did you mean 'valid_until'?" in out
    assert "Traceback" not in out
