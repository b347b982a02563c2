"""The one place where the parts are built from the config and wired: the frame loop,
background workers, signals (SIGTERM/SIGINT stop, SIGHUP reload) and systemd notify."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import signal
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

from gpiozero.pins import Factory

from .central.client import ServerClient, read_token
from .central.leases import LeaseWorker, OccupancyStore
from .central.sync import CredentialSync, EventUploader, JournalPruner
from .clock import TrustedClock, latest_journal_time
from .config import Config, broker_address, load_config, parse_listen
from .config.changes import Changes, diff, effective
from .door.doorio import DoorIO
from .door.indicators import Indicators
from .door.inputs import StaffCheck
from .door.pins import claim_relay, make_pin_factory
from .door.relay import Door
from .errors import (
    CameraStalled,
    ConfigError,
    GateError,
    JournalError,
    RelayFault,
)
from .exits import Exit, exit_for
from .faults import Faults
from .fleet.bus import BrokerSettings, FleetBus
from .fleet.remote import RemoteControl
from .journal import EventKind, Journal, utc_now
from .metrics import GateMetrics, Readings
from .notify import sd_notify, watchdog_interval
from .scan.camera import Frame, FrameSource, open_source
from .scan.scanner import Presentation, Scanner
from .status import FrameRate, StatusWriter
from .verify import Lockout, build_chain, lockout_rule
from .verify.credentials import CredentialStore
from .verify.listwatch import ListWatcher
from .verify.lockdown import Lockdown, LockdownChain
from .verify.occupancy import OccupancyChain, OccupancyGuard
from .verify.online import LAST_SYNC_KEY, OnlineVerifier
from .worker import Worker

log = logging.getLogger("gate")


class Gate:
    """A running gate: camera -> scanner -> verifier chain -> door, everything journaled."""

    def __init__(self, cfg: Config, stop: threading.Event,
                 pin_factory: Factory | None = None) -> None:
        self.cfg = cfg
        self.stop = stop
        self.reload_requested = threading.Event()
        self.faults = Faults()  # first: any part may raise one while the rest is built
        self._parts = contextlib.ExitStack()
        try:
            self._build(pin_factory)
        except BaseException:
            self._parts.close()  # the relay is closed (locked) if it was built
            raise

    def _build(self, pin_factory: Factory | None) -> None:
        cfg, parts = self.cfg, self._parts
        factory = pin_factory if pin_factory is not None else make_pin_factory(cfg.gpio.pin_factory)
        # The relay comes first: its line is driven to "locked" before anything else runs.
        relay = claim_relay(cfg, factory)
        parts.callback(relay.close)
        self.clock = TrustedClock(cfg.gate.state_dir / "clock.json", on_fault=self._clock_fault)
        last_event = latest_journal_time(cfg.journal_path)  # evidence too, before we add any
        if last_event is not None:
            self.clock.observe(last_event)
        self.journal = Journal(cfg.journal_path, cfg.gate.id)
        parts.callback(self.journal.close)
        parts.callback(self.clock.save)
        self.lockout = Lockout(lockout_rule(cfg.lockout), on_change=self._lockout_changed)
        self.metrics: GateMetrics | None = None
        if cfg.metrics is not None:  # counts from the first event on
            self.metrics = GateMetrics(cfg.gate.id)
            self.journal.subscribe(self.metrics.observe)
        self.fleet: FleetBus | None = None
        self.lockdown = Lockdown(cfg.lockdown_path)
        parts.callback(self._write_final_status)  # after the door below is locked and closed
        self.online: OnlineVerifier | None = None  # set before any status is built
        self.door = Door(relay, on_change=self._door_changed, on_fault=self._relay_fault)
        parts.callback(self.door.close)
        self.indicators = Indicators.from_config(cfg, pin_factory=factory)
        parts.callback(self.indicators.close)
        self.indicators.set_lockdown(self.lockdown.on)
        self.faults.bind(self.indicators.set_fault)
        if self.door.failed is not None:  # a retried lock at start failed for good
            raise RelayFault(self.door.failed)
        self.last_decision: dict[str, Any] | None = None
        self.started_at = utc_now()
        self.frame_rate = FrameRate()
        self.status_writer = StatusWriter(cfg.status_path)
        self.door_io = DoorIO(cfg, self.door, self.journal, parts, factory, self._input_grant)
        self._write_status("starting")
        self.store = CredentialStore(cfg.credentials_path)
        parts.callback(self.store.close)
        self.list_watcher = ListWatcher(self.store, cfg.list.path, cfg.list.watch_interval_s,
                                        self.journal,
                                        on_fault=lambda on: self._set_fault("allowlist", on))
        self.list_watcher.load_now()  # a missing or broken list stops us here, relay locked
        self.list_watcher.start()
        parts.callback(self.list_watcher.close)
        self.workers: list[Worker] = [JournalPruner(self.journal, cfg.journal.retention_days,
                                                    uploaded_only=cfg.server is not None)]
        if cfg.server is not None:
            self._build_server_parts(cfg)
        for worker in self.workers:
            worker.start()
            parts.callback(worker.close)
        self.chain = self._occupancy_chain(LockdownChain(build_chain(
            cfg, self.store, self.online, clock=self.clock, lockout=self.lockout), self.lockdown))
        self.scanner = Scanner.from_config(cfg.decoder)
        self.source: FrameSource = open_source(cfg.camera, self.stop)
        parts.callback(self.source.close)
        self._build_fleet(cfg)

    def _build_fleet(self, cfg: Config) -> None:
        """MQTT and metrics last: off the door path, and only once the door can decide."""
        if cfg.mqtt is not None:
            m = cfg.mqtt
            host, port, tls = broker_address(m.url)
            password = read_token(m.password_file) if m.password_file is not None else None
            settings = BrokerSettings(
                host=host, port=port, tls=tls, username=m.username, password=password,
                ca_file=m.ca_file, client_cert=m.client_cert, client_key=m.client_key,
                topic_prefix=m.topic_prefix, discovery_prefix=m.discovery_prefix,
                keepalive_s=m.keepalive_s, command_max_age_s=m.command_max_age_s,
                queue_size=m.queue_size)
            sync = getattr(self, "sync", None)
            remote = RemoteControl(
                self.door, self.journal, self.lockdown, self.remote_unlock,
                self._lockdown_changed,
                sync.trigger if sync is not None else self.list_watcher.trigger)
            self.fleet = FleetBus(settings, cfg.gate.id, cfg.server is not None, remote,
                                  self.metrics.count_mqtt if self.metrics else None)
            self.journal.subscribe(self.fleet.observe)
            self.fleet.observe_status(self._fleet_status())
            self.fleet.start()
            self._parts.callback(self.fleet.close)
        if self.metrics is not None and cfg.metrics is not None:
            fleet = self.fleet
            self.metrics.bind(Readings(
                server_reachable=lambda: _num(self._server_reachable()),
                cache_age_s=self._cache_age_s,
                outbox_size=(self.journal.pending_count if cfg.server is not None
                             else lambda: None),
                # The uploader keeps no dead letters yet: NaN, not a made-up zero.
                dead_letters=lambda: getattr(getattr(self, "uploader", None), "dead_letters",
                                             None),
                mqtt_connected=(lambda: float(fleet.connected)) if fleet else lambda: None))
            host, port = parse_listen(cfg.metrics.listen)
            bound = self.metrics.serve(host, port)
            self._parts.callback(self.metrics.close)
            log.info("metrics: http://%s:%d/metrics", host, bound)

    def _lockdown_changed(self, on: bool) -> None:
        self.indicators.set_lockdown(on)
        if self.fleet is not None:
            self.fleet.observe_status({"lockdown": on})

    def _cache_age_s(self) -> float | None:
        if self.cfg.server is None:
            return None
        value = self.store.get_meta(LAST_SYNC_KEY)
        try:
            return None if value is None else max(0.0, time.time() - float(value))
        except ValueError:
            return None

    def _fleet_status(self) -> dict[str, Any]:
        return {"server_reachable": self._server_reachable(),
                "cache_age_s": self._cache_age_s(), "lockdown": self.lockdown.on}

    def _build_server_parts(self, cfg: Config) -> None:
        """Online verifier, credential sync and journal upload; each its own client, since a
        requests.Session is not meant to be shared between threads."""
        server = cfg.server
        assert server is not None
        token = read_token(server.token_file)

        def client() -> ServerClient:
            c = ServerClient(server, cfg.gate.id, token)
            c.on_server_time = self.clock.server_time
            self._parts.callback(c.close)
            return c

        self.online = OnlineVerifier(client(), server.timeout_s, cfg.policy.status)
        self._parts.callback(self.online.close)
        self.sync = CredentialSync(client(), self.store, server.sync_interval_s)
        self._build_occupancy(cfg, client())
        self.uploader = EventUploader(client(), self.journal, server.upload_interval_s,
                                      server.upload_batch, server.upload_max_backoff_s)
        self.workers += [self.sync, self.uploader]

    def _build_occupancy(self, cfg: Config, client: ServerClient) -> None:
        """Occupancy at a site (`[gate] site` with a server): the lease worker and the guard
        that counts each grant when the door opens (issue 12)."""
        if cfg.gate.site is None:
            return
        store = OccupancyStore(cfg.occupancy_path)
        self._parts.callback(store.close)
        self.occupancy = OccupancyGuard(
            store, cfg.gate.direction, has_contact=cfg.inputs.door_contact_pin is not None,
            open_s=cfg.door.open_s, max_open_s=cfg.door.max_open_s,
            grace_s=cfg.door.forced_open_grace_s, max_keys=cfg.occupancy.passback_max_keys,
            on_alarm=lambda alarm, by: self._record("alarm", alarm=alarm, event="raised",
                                                    source=by))
        self.journal.subscribe(self.occupancy.observe)  # the contact's `open` commits grants
        worker = LeaseWorker(client, store, self.occupancy.report, self.occupancy.accept,
                             cfg.occupancy.lease_interval_s)
        self.occupancy.on_passage = worker.trigger
        self.workers.append(worker)

    def _occupancy_chain(self, chain: LockdownChain) -> LockdownChain | OccupancyChain:
        guard: OccupancyGuard | None = getattr(self, "occupancy", None)
        return chain if guard is None else OccupancyChain(chain, guard)

    # -- the frame loop ---------------------------------------------------------------------

    def run(self) -> int:
        """Scan until stopped or the files camera ends; returns the exit code."""
        self._record("system", event="started", camera=self.cfg.camera.source)
        log.info("gate %s running: camera=%s decoder=%s", self.cfg.gate.id,
                 self.cfg.camera.source, self.scanner.decoder.name)
        sd_notify("READY=1", f"STATUS=scanning ({self.cfg.camera.source} camera)")
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
            self._tick(frame)
            if self.reload_requested.is_set():
                self.reload_requested.clear()
                self.reload()
        sd_notify("STOPPING=1")
        if self.door.failed is not None:  # systemd restarts us; ExecStopPost locks the line
            self._record("system", event="stopped", reason="relay_fault")
            raise RelayFault(f"the relay could not be locked ({self.door.failed}); exiting so "
                             "that systemd restarts the gate")
        reason = "signal" if self.stop.is_set() else "end of frames"
        self._record("system", event="stopped", reason=reason)
        log.info("gate stopping (%s)", reason)
        return Exit.OK

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
        recorded = self._record(
            "decision", durable=False, verdict=decision.verdict, reason=decision.reason,
            source=decision.source, label=decision.label, credential_id=decision.credential_id,
            code_sha256=p.code.sha256, latency_ms=round(latency_ms, 2))
        verdict, reason = decision.verdict, decision.reason
        if decision.granted and self._may_open(recorded):
            self.door.release(open_s)
        elif decision.granted:
            verdict, reason = "deny", "journal_error"
        if recorded:
            self._sync_journal()
        self.indicators.show(verdict, open_s)
        log.info("decision: %s (%s) label=%r source=%s code=%s… latency=%.1fms%s",
                 verdict, reason, decision.label, decision.source, p.code.sha256[:12],
                 latency_ms, "" if recorded else " NOT JOURNALED")
        self._decided(verdict, reason, decision.source, decision.label)
        self._write_status()

    def _open_s(self, asked: float | None) -> float:
        """The server's open_s if it is a sane number, capped by [door] max_open_s; else the
        configured open_s."""
        door = self.cfg.door
        if asked is None or not (isinstance(asked, (int, float)) and math.isfinite(asked)
                                 and asked > 0):
            return door.open_s
        if asked > door.max_open_s:
            log.warning("server asked to open for %.1f s; capped at [door] max_open_s = %.1f s",
                        asked, door.max_open_s)
            return door.max_open_s
        return float(asked)

    def _may_open(self, recorded: bool) -> bool:
        if recorded:
            return True
        if self.cfg.journal.on_write_error == "grant_unrecorded":
            log.error("journal unwritable: opening anyway ([journal] on_write_error = "
                      "\"grant_unrecorded\"); this opening is not recorded")
            return True
        log.error("journal unwritable: denying, the door stays locked ([journal] "
                  "on_write_error = \"deny\")")
        return False

    def _record(self, kind: EventKind, *, durable: bool = True, **fields: Any) -> bool:
        """Journal one event; False (and the `journal` fault) if it could not be committed.
        `durable=False` commits without the fsync: call `_sync_journal` right after."""
        try:
            if durable:
                self.journal.record(kind, **fields)
            else:
                self.journal.write(kind, **fields)
        except JournalError as exc:
            log.error("%s", exc)
            self._set_fault("journal", True)
            return False
        self._set_fault("journal", False)
        return True

    def _sync_journal(self) -> None:
        """fsync what `_record(durable=False)` committed; a failure is the `journal` fault."""
        try:
            self.journal.sync()
        except JournalError as exc:
            log.error("%s", exc)
            self._set_fault("journal", True)

    def _relay_fault(self, detail: str, recovered: bool) -> None:
        """From the door (any thread): a relay write raised. Recovered: journaled, running on.
        Not: the `relay` fault, and the frame loop ends (woken through `stop`)."""
        log.error("relay fault: %s", detail)
        self._record("system", event="error", where="relay", detail=detail,
                     recovered=recovered)
        if not recovered:
            self._set_fault("relay", True)
            if getattr(self, "status_writer", None) is not None:
                self._write_status()
            self.stop.set()

    def _door_changed(self, state: str) -> None:
        door_io: DoorIO | None = getattr(self, "door_io", None)
        if door_io is not None:  # first: an opening right now must see the relay as it is
            door_io.relay_changed(state)
        log.info("relay: %s", state)
        indicators: Indicators | None = getattr(self, "indicators", None)
        if indicators is not None:
            indicators.door_changed(state == "unlocked")
        self._record("door", state=state)

    def _clock_fault(self, active: bool, behind_s: float) -> None:
        """The wall clock fell behind the trusted time (or caught up): a `clock` fault."""
        self._set_fault("clock", active)
        with contextlib.suppress(Exception):
            self.journal.record("system", event="clock_fault" if active else "clock_ok",
                                behind_s=round(behind_s, 1))

    def _lockout_changed(self, locked: bool, denials: int) -> None:
        """Too many denials locked the scanner (or the cooldown ended): a `lockout` alarm."""
        fields = {"denials": denials} if locked else {}
        self.journal.record("alarm", alarm="lockout", event="raised" if locked else "cleared",
                            **fields)  # each locked_out decision shows the denied pattern

    def _workers_alive(self) -> bool:
        return (self.list_watcher.is_alive() and all(w.is_alive() for w in self.workers)
                and self.door_io.is_alive())

    # -- door inputs, alarms, faults and the status file ------------------------------------

    def _input_grant(self, reason: str, source: str, open_s: float,
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
            recorded = self._record(
                "decision", verdict="grant", reason=reason, source=source, label=label,
                credential_id=check.credential_id if check else None,
                code_sha256=check.code_sha256 if check else None,
                latency_ms=round((time.monotonic_ns() - started) / 1e6, 2), **extra)
            if not self._may_open(recorded):
                if check is not None:
                    self.indicators.show("deny", open_s)
                self._decided("deny", "journal_error", source, label)
                self._write_status()
                return
            self.door.release(open_s)
            if check is not None:
                self.indicators.show("grant", open_s)
            log.info("decision: grant (%s) label=%r source=%s%s", reason, label, source,
                     "" if recorded else " NOT JOURNALED")
            self._decided("grant", reason, source, label)
        except Exception:
            log.exception("%s: handling the grant failed", source)
            self._set_fault(source, True)

    def remote_unlock(self, command_id: str) -> None:
        """An accepted `unlock` command (MQTT thread): one pulse of [door] open_s through
        the decision path; during a lockdown a `lockdown` denial, journaled the same way."""
        if self.lockdown.on:
            started = time.monotonic_ns()
            self._record("decision", verdict="deny", reason="lockdown", source="remote",
                         label="", credential_id=None, code_sha256=None,
                         latency_ms=round((time.monotonic_ns() - started) / 1e6, 2),
                         command_id=command_id)
            log.info("decision: deny (lockdown) source=remote command=%s", command_id)
            self._decided("deny", "lockdown", "remote", "")
            return
        self._input_grant("ok", "remote", self.cfg.door.open_s, command_id=command_id)

    def _decide_guarded(self, p: Presentation) -> None:
        """One presentation; an error is a fault shown on the indicators, not a crash."""
        try:
            self._decide(p)
        except Exception:
            log.exception("deciding on code %s… failed", p.code.sha256[:12])
            self._set_fault("decision", True)
            with contextlib.suppress(Exception):  # no older staff check outlives a later code
                self.door_io.decided(None)
            with contextlib.suppress(Exception):
                self.journal.record("system", event="error", where="decision",
                                    code_sha256=p.code.sha256)
        else:
            self._set_fault("decision", False)

    def _decided(self, verdict: str, reason: str, source: str, label: str) -> None:
        self.last_decision = {"verdict": verdict, "reason": reason, "source": source,
                              "label": label, "at": utc_now()}

    def _set_fault(self, name: str, on: bool) -> None:
        self.faults.set(name, on)

    def _tick(self, frame: Frame) -> None:
        """Per frame, cheap: count it; about once a second refresh offline and the status."""
        self.frame_rate.tick(frame.ts_ns)
        self.lockout.poll()
        occupancy: OccupancyGuard | None = getattr(self, "occupancy", None)
        if occupancy is not None:
            occupancy.poll()
            self.indicators.set_full(occupancy.full)
        if self.status_writer.due():
            self.clock.save_if_due()  # also notices a wall clock set back while idle
            self.indicators.set_offline(self._server_reachable() is False)
            self._write_status(force=False)

    def _server_reachable(self) -> bool | None:
        """None without a [server]; False when the last verify or sync could not reach it."""
        if self.cfg.server is None:
            return None
        online: OnlineVerifier | None = getattr(self, "online", None)  # not built yet at start
        online_ok = online.reachable if online is not None else None
        sync = getattr(self, "sync", None)
        sync_ok = None if sync is None else sync.reachable
        if online_ok is False or sync_ok is False:
            return False
        return True if (online_ok or sync_ok) else None

    def _cache_synced_at(self) -> str | None:
        if self.cfg.server is None:
            return None
        value = self.store.get_meta(LAST_SYNC_KEY)
        try:
            return None if value is None else utc_now(float(value))
        except ValueError:
            return None

    def status_snapshot(self, state: str | None = None) -> dict[str, Any]:
        """What `gate status` shows: no code, ever."""
        relay = self.door.relay
        monitor = self.door_io.snapshot()
        store = getattr(self, "store", None)
        return {
            "gate": self.cfg.gate.id, "pid": os.getpid(), "started_at": self.started_at,
            "state": state or ("fault" if self.faults else "running"),
            "faults": self.faults.names(), "last_decision": self.last_decision,
            "door": {"relay": "locked" if relay.closed or not relay.is_active else "unlocked",
                     **monitor, "fail_mode": self.cfg.door.fail_mode},
            "server_reachable": self._server_reachable(),
            "cache_synced_at": self._cache_synced_at() if store is not None else None,
            # Events the server refused alone, set aside for good (journal dead_letters).
            "dead_letters": self.journal.dead_letter_count() if self.cfg.server else None,
            "fps": self.frame_rate.fps(),
            "occupancy": (self.occupancy.snapshot() if getattr(self, "occupancy", None)
                          else None),
        }

    def _write_status(self, state: str | None = None, force: bool = True) -> None:
        try:
            snapshot = self.status_snapshot(state)
        except Exception:
            log.exception("status: building the snapshot failed")
            return
        if self.fleet is not None:
            self.fleet.observe_status(self._fleet_status())
        writer = self.status_writer
        if force:
            writer.write(snapshot)
        else:
            writer.maybe_write(snapshot)
        self._set_fault("status_file", writer.failing)

    def _write_final_status(self) -> None:
        if getattr(self, "status_writer", None) is not None:
            self._write_status("stopped")

    # -- reload and stop --------------------------------------------------------------------

    def reload(self) -> None:
        """SIGHUP: re-read config and list. The relay and camera are left as they are. A
        file that does not load is refused whole and the running config kept."""
        path = self.cfg.source_path
        assert path is not None
        try:
            new = load_config(path)
        except ConfigError as exc:
            log.error("reload refused, keeping the running config:\n%s", exc)
            self.journal.record("system", event="reload_failed", problems=len(exc.problems),
                                error=exc.problems[0][:500])
            return
        try:
            changes = self._apply(new)
        except Exception as exc:  # a part refusing the new values must not stop the door
            log.exception("reload failed half-way; parts not yet changed keep their config")
            self.journal.record("system", event="reload_failed", problems=1,
                                error=f"{type(exc).__name__} while applying")
            return
        self.journal.record("system", event="reloaded", applied=list(changes.applied),
                            restart_needed=list(changes.restart_needed))
        log.info("reloaded %s", path)

    def _apply(self, new: Config) -> Changes:
        """Hand the live keys to each part; keys the schema marks `restart` keep their
        running value (the relay, camera and sockets are never rebuilt here)."""
        changes = diff(self.cfg, new)
        for key in changes.restart_needed:
            log.warning("reload: %s changed; it takes effect after a restart", key)
        cfg = self.cfg = effective(self.cfg, new, changes)
        self.door_io.reconfigure(
            held_open_s=cfg.door.held_open_s, forced_open_grace_s=cfg.door.forced_open_grace_s,
            staff_window_s=cfg.inputs.staff_window_s, open_s=cfg.door.open_s)
        self.indicators.reconfigure(cfg.indicators)
        self.scanner.reconfigure(cfg.decoder)
        self.list_watcher.retarget(cfg.list.path, cfg.list.watch_interval_s)
        if self.online is not None:
            self.online.status_map = cfg.policy.status
        self.lockout.reconfigure(lockout_rule(cfg.lockout))
        self.chain = self._occupancy_chain(LockdownChain(build_chain(
            cfg, self.store, self.online, clock=self.clock, lockout=self.lockout), self.lockdown))
        return changes

    def close(self) -> None:
        """Lock the door and release every part; runs on every exit path."""
        self._parts.close()


def _num(value: bool | None) -> float | None:
    return None if value is None else float(value)


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
