"""The running gate: the frame loop, the one decision path (scanned codes, buttons, remote
unlocks), reload, signals (SIGTERM/SIGINT stop, SIGHUP reload) and systemd notify."""

from __future__ import annotations

import contextlib
import logging
import math
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from gpiozero.pins import Factory

from .config import Config, load_config
from .contracts import Reason, Source
from .door.inputs import StaffCheck
from .errors import CameraStalled, ConfigError, GateError, RelayFault
from .exits import Exit, exit_for
from .journal import DecisionEvent, SystemEvent
from .notify import sd_notify, watchdog_interval
from .scan.camera import Frame
from .scan.scanner import Presentation
from .verify.signed import pass_fields
from .wiring import apply_config, build_parts, start_fleet

log = logging.getLogger("gate")


class Gate:
    """A running gate: camera -> scanner -> verifier chain -> door, everything journaled.
    `wiring.build_parts` makes the parts; this only runs them."""

    def __init__(self, cfg: Config, stop: threading.Event,
                 pin_factory: Factory | None = None) -> None:
        self.stop = stop
        self.reload_requested = threading.Event()
        self.parts = p = build_parts(cfg, stop, pin_factory)
        self.faults, self.recorder, self.journal = p.faults, p.recorder, p.recorder.journal
        self.clock, self.lockout, self.lockdown, self.metrics = (p.clock, p.lockout,
                                                                 p.lockdown, p.metrics)
        self.door, self.indicators, self.door_io = p.door, p.indicators, p.door_io
        self.store, self.list_watcher, self.workers = p.store, p.list_watcher, p.workers
        self.board, self.frame_rate = p.board, p.board.frame_rate
        self.chain, self.scanner, self.source = p.chain, p.scanner, p.source
        self.frames = p.frames
        try:
            self.door_io.when_grant = self._input_grant
            start_fleet(p, self)
        except BaseException:
            p.stack.close()
            raise

    @property
    def cfg(self) -> Config:
        return self.parts.config

    @property
    def last_decision(self) -> dict[str, Any] | None:
        return self.board.last_decision.get()

    def lockdown_changed(self, on: bool) -> None:
        """A remote lockdown (MQTT thread): shown on the indicators and to the fleet."""
        self.indicators.set_lockdown(on)
        if self.parts.fleet is not None:
            self.parts.fleet.observe_status({"lockdown": on})

    # -- the frame loop ---------------------------------------------------------------------

    def run(self) -> int:
        """Scan until stopped or the files camera ends; returns the exit code."""
        camera = self.parts.settings.camera
        self.recorder.record(SystemEvent("started", extra={"camera": camera}))
        log.info("gate %s running: camera=%s decoder=%s", self.parts.settings.gate_id,
                 camera, self.scanner.decoder.name)
        sd_notify("READY=1", f"STATUS=scanning ({camera} camera)")
        ping_every = watchdog_interval()
        last_ping = 0.0
        while not self.stop.is_set() and self.door.failed is None:
            frame = self.source.read()
            if frame is None:
                break
            if ping_every is not None and time.monotonic() - last_ping >= ping_every:
                if self._workers_alive():  # a dead worker starves the watchdog: restart
                    sd_notify("WATCHDOG=1")
                    last_ping = time.monotonic()
            scan_started = time.perf_counter()
            presentations = self.scanner.scan(frame)
            if self.metrics is not None:
                self.metrics.frames.inc()
                self.metrics.decode_seconds.observe(time.perf_counter() - scan_started)
            for presentation in presentations:
                self._decide_guarded(presentation)
            if self.frames is not None and self.scanner.worth_recording:  # after the door
                self.frames.record(frame.ts_ns, frame.seq,
                                   frame.luma if frame.main is None else frame.main)
            self._tick(frame)
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
        sd_notify("STOPPING=1")
        if self.door.failed is not None:  # systemd restarts us; ExecStopPost locks the line
            self.recorder.record(SystemEvent("stopped", extra={"reason": "relay_fault"}))
            raise RelayFault(f"the relay could not be locked ({self.door.failed}); exiting so "
                             "that systemd restarts the gate")
        reason = "signal" if self.stop.is_set() else "end of frames"
        self.recorder.record(SystemEvent("stopped", extra={"reason": reason}))
        log.info("gate stopping (%s)", reason)
        return Exit.OK

    def _tick(self, frame: Frame) -> None:
        """Per frame, cheap: count it; about once a second refresh offline and the status."""
        self.frame_rate.tick(frame.ts_ns)
        self.lockout.poll()
        occupancy = self.parts.occupancy
        if occupancy is not None:
            occupancy.poll()
            self.indicators.set_full(occupancy.full)
        if self.board.writer.due():
            self.clock.save_if_due()  # also notices a wall clock set back while idle
            self.indicators.set_offline(self.board.reachable() is False)
            self.board.write(force=False)

    def _workers_alive(self) -> bool:
        return (self.list_watcher.is_alive() and all(w.is_alive() for w in self.workers)
                and self.door_io.is_alive())

    # -- the decision path ------------------------------------------------------------------

    def _decide_guarded(self, p: Presentation) -> None:
        """One presentation; an error is a fault shown on the indicators, not a crash."""
        try:
            self._decide(p)
        except Exception:
            log.exception("deciding on code %s… failed", p.code.sha256[:12])
            self.faults.set("decision", True)
            with contextlib.suppress(Exception):  # no older staff check outlives a later code
                self.door_io.decided(None)
            with contextlib.suppress(Exception):
                self.journal.record(SystemEvent(
                    "error", extra={"where": "decision", "code_sha256": p.code.sha256}))
        else:
            self.faults.set("decision", False)

    def _decide(self, p: Presentation) -> None:
        """Decide, journal (committed), then move the relay, then fsync the journal: no
        opening goes unrecorded unless [journal] on_write_error = "grant_unrecorded" says so,
        and the fsync's cost does not delay the door."""
        decision = self.chain.check(p.code.sha256, p.code.data, time.time())
        open_s = self._open_s(decision.open_s)
        latency_ms = (time.monotonic_ns() - p.frame.ts_ns) / 1e6  # capture -> decision
        # Before the decision is journaled (observable): a staff press that follows the
        # verdict must find its window open; any other verdict closes a pending one.
        self.door_io.decided(None if decision.verdict != "staff" else StaffCheck(
            p.code.sha256, decision.label, decision.credential_id, decision.reason,
            decision.source, open_s))
        recorded = self._journal_decision(DecisionEvent(
            decision.verdict, decision.reason, decision.source, label=decision.label,
            credential_id=decision.credential_id, code_sha256=p.code.sha256,
            latency_ms=round(latency_ms, 2),
            extra=pass_fields(decision)), durable=False)  # a signed pass: its pass_id only
        verdict, reason = decision.verdict, decision.reason
        if decision.granted and self._may_open(recorded):
            self.door.release(open_s)
        elif decision.granted:
            verdict, reason = "deny", "journal_error"
        if recorded:
            self.recorder.sync()
        self.indicators.show(verdict, open_s)
        log.info("decision: %s (%s) label=%r source=%s code=%s… latency=%.1fms%s",
                 verdict, reason, decision.label, decision.source, p.code.sha256[:12],
                 latency_ms, "" if recorded else " NOT JOURNALED")
        self.board.last_decision.set(verdict, reason, decision.source, decision.label)
        self.board.write()

    def _input_grant(self, reason: Reason, source: Source, open_s: float,
                     check: StaffCheck | None = None, **extra: Any) -> None:
        """A grant decided by a person (a button on a GPIO thread, a remote command on the
        MQTT thread). Journaled before the relay moves, as a scanned code's; an unwritable
        journal denies unless [journal] on_write_error = "grant_unrecorded"."""
        started = time.monotonic_ns()
        label = check.label if check else ""
        try:
            if check is not None:
                extra = {"override_reason": check.reason, "override_source": check.source,
                         **extra}
            recorded = self._journal_decision(DecisionEvent(
                "grant", reason, source, label=label,
                credential_id=check.credential_id if check else None,
                code_sha256=check.code_sha256 if check else None,
                latency_ms=round((time.monotonic_ns() - started) / 1e6, 2), extra=extra))
            if not self._may_open(recorded):
                if check is not None:
                    self.indicators.show("deny", open_s)
                self.board.last_decision.set("deny", "journal_error", source, label)
                self.board.write()
                return
            self.door.release(open_s)
            if check is not None:
                self.indicators.show("grant", open_s)
            log.info("decision: grant (%s) label=%r source=%s%s", reason, label, source,
                     "" if recorded else " NOT JOURNALED")
            self.board.last_decision.set("grant", reason, source, label)
        except Exception:
            log.exception("%s: handling the grant failed", source)
            self.faults.set(source, True)

    def remote_unlock(self, command_id: str) -> None:
        """An accepted `unlock` command (MQTT thread): one pulse of [door] open_s through
        the decision path; during a lockdown a `lockdown` denial, journaled the same way."""
        if self.lockdown.on:
            started = time.monotonic_ns()
            self._journal_decision(DecisionEvent(
                "deny", "lockdown", "remote",
                latency_ms=round((time.monotonic_ns() - started) / 1e6, 2),
                extra={"command_id": command_id}))
            log.info("decision: deny (lockdown) source=remote command=%s", command_id)
            self.board.last_decision.set("deny", "lockdown", "remote", "")
            return
        self._input_grant("ok", "remote", self.parts.settings.open_s, command_id=command_id)

    def _journal_decision(self, event: DecisionEvent, *, durable: bool = True) -> bool:
        """Every decision event is written here: False if it could not be committed."""
        return self.recorder.record(event, durable=durable)

    def _open_s(self, asked: float | None) -> float:
        """The server's open_s if it is a sane number, capped by [door] max_open_s; else the
        configured open_s."""
        settings = self.parts.settings
        if asked is None or not (isinstance(asked, (int, float)) and math.isfinite(asked)
                                 and asked > 0):
            return settings.open_s
        if asked > settings.max_open_s:
            log.warning("server asked to open for %.1f s; capped at [door] max_open_s = %.1f s",
                        asked, settings.max_open_s)
            return settings.max_open_s
        return float(asked)

    def _may_open(self, recorded: bool) -> bool:
        if recorded:
            return True
        if self.parts.settings.on_write_error == "grant_unrecorded":
            log.error("journal unwritable: opening anyway ([journal] on_write_error = "
                      "\"grant_unrecorded\"); this opening is not recorded")
            return True
        log.error("journal unwritable: denying, the door stays locked ([journal] "
                  "on_write_error = \"deny\")")
        return False

    # -- status, reload and stop ------------------------------------------------------------

    def status_snapshot(self, state: str | None = None) -> dict[str, Any]:
        """What `gate status` shows: no code, ever."""
        return self.board.snapshot(state)

    def reload(self) -> None:
        """SIGHUP: re-read config and list. The relay and camera are left as they are. A
        file that does not load is refused whole and the running config kept."""
        path = self.cfg.source_path
        assert path is not None
        try:
            new = load_config(path)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config:\n%s", exc)
            self.journal.record(SystemEvent("reload_failed", extra={
                "problems": len(exc.problems), "error": exc.problems[0][:500]}))
            return
        try:
            changes = apply_config(self.parts, new)
        except Exception as exc:  # a part refusing the new values must not stop the door
            log.exception("reload failed half-way; parts not yet changed keep their config")
            self.journal.record(SystemEvent("reload_failed", extra={
                "problems": 1, "error": f"{type(exc).__name__} while applying"}))
            return
        finally:
            self.chain = self.parts.chain
        self.journal.record(SystemEvent("reloaded", extra={
            "applied": list(changes.applied), "restart_needed": list(changes.restart_needed)}))
        log.info("reloaded %s", path)

    def close(self) -> None:
        """Lock the door and release every part; runs on every exit path."""
        self.parts.stack.close()

def run_daemon(config_path: Path, pin_factory: Factory | None = None) -> int:
    """`gate run`: exit 0 on a clean stop, 2 on a bad config, 1 on any other failure."""
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        log.error("config error, the door stays locked:\n%s", exc)
        return Exit.CONFIG
    logging.getLogger().setLevel(cfg.gate.log_level.upper())
    stop = threading.Event()
    gate: Gate | None = None

    def on_stop(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    def on_hup(signum: int, _frame: FrameType | None) -> None:
        if gate is not None:
            gate.reload_requested.set()
            gate.list_watcher.trigger()

    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, on_hup)
    try:
        gate = Gate(cfg, stop, pin_factory)
        rc = gate.run()
    except CameraStalled as exc:
        log.error("%s; exiting so that systemd restarts the gate", exc)
        return Exit.FAILURE
    except GateError as exc:
        log.error("%s", exc)
        return exit_for(exc)
    except Exception:
        log.exception("unexpected error; the door is locked")
        return Exit.FAILURE
    finally:
        if gate is not None:
            gate.close()
    if gate.door.failed is not None:  # the lock at close failed: let systemd restart us
        log.error("the relay could not be locked at stop; exiting 1")
        return Exit.FAILURE
    return rc
