"""Builds the gate's parts from the config: the only code that reads the whole Config."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from gpiozero.pins import Factory

from .central.client import ServerClient, read_token
from .central.leases import LeaseWorker, OccupancyStore
from .central.passwiring import PassParts, build_passes
from .central.sync import CredentialSync, EventUploader, JournalPruner
from .clock import TrustedClock, latest_journal_time
from .config import Config, broker_address, indicator_pins, parse_listen
from .config.changes import Changes, diff, effective
from .door.doorio import DoorIO
from .door.indicators import Indicators
from .door.pins import claim_relay_pin
from .door.relay import Door
from .errors import RelayFault
from .faults import Faults
from .fleet.bus import BrokerSettings, FleetBus
from .fleet.remote import RemoteControl
from .journal import AlarmEvent, Journal, SystemEvent
from .metrics import GateMetrics, Readings
from .preflight import preflight
from .recorder import DoorEvents, Recorder
from .scan.camera import FrameSource, open_source
from .scan.recorder import FrameRecorder
from .scan.scanner import Scanner
from .snapshot import Reachability, StatusBoard
from .status import StatusWriter
from .verify import Lockout, build_chain, lockout_rule
from .verify.credentials import CredentialStore
from .verify.listwatch import ListWatcher
from .verify.lockdown import Lockdown, LockdownChain
from .verify.occupancy import OccupancyChain, OccupancyGuard
from .verify.online import ServerCheck
from .worker import Worker

log = logging.getLogger("gate")


@dataclass(frozen=True)
class RunSettings:
    """The few config values the decision path reads; replaced whole on reload."""

    gate_id: str
    camera: str
    open_s: float
    max_open_s: float
    on_write_error: str


@dataclass
class GateParts:
    """Everything `build_parts` made, and `stack`, which closes it (the relay locked last)."""

    config: Config
    settings: RunSettings
    stack: contextlib.ExitStack
    faults: Faults
    recorder: Recorder
    clock: TrustedClock
    lockout: Lockout
    lockdown: Lockdown
    door: Door
    door_events: DoorEvents
    indicators: Indicators
    door_io: DoorIO
    store: CredentialStore
    list_watcher: ListWatcher
    workers: list[Worker]
    online: ServerCheck | None
    sync: CredentialSync | None
    board: StatusBoard
    chain: LockdownChain | OccupancyChain
    scanner: Scanner
    source: FrameSource
    metrics: GateMetrics | None
    occupancy: OccupancyGuard | None = field(default=None)
    passes: PassParts | None = field(default=None)
    fleet: FleetBus | None = field(default=None)
    frames: FrameRecorder | None = field(default=None)  # [camera] record_dir


class Runner(Protocol):
    """What the fleet bus needs of the running gate."""

    def remote_unlock(self, command_id: str) -> None: ...
    def lockdown_changed(self, on: bool) -> None: ...


def run_settings(cfg: Config) -> RunSettings:
    return RunSettings(cfg.gate.id, cfg.camera.source, cfg.door.open_s, cfg.door.max_open_s,
                       cfg.journal.on_write_error)


def build_indicators(cfg: Config, pin_factory: Factory | None) -> Indicators:
    pins = indicator_pins(cfg)
    return Indicators(pins["granted_led_pin"], pins["denied_led_pin"], pins["buzzer_pin"],
                      pins["status_led_pin"], patterns=cfg.indicators,
                      active_high=cfg.indicators.active_high, pin_factory=pin_factory)


def build_parts(cfg: Config, stop: threading.Event,
                pin_factory: Factory | None = None) -> GateParts:
    """Every part, in the order that keeps the door safe; on any failure what was built is
    closed (the relay locked) and the error raised."""
    stack = contextlib.ExitStack()
    try:
        return _build(cfg, stop, pin_factory, stack)
    except BaseException:
        stack.close()
        raise


def _build(cfg: Config, stop: threading.Event, pin_factory: Factory | None,
           stack: contextlib.ExitStack) -> GateParts:
    checked = preflight(cfg, pin_factory)  # the same checks as check-config, before any pin
    factory = checked.pin_factory
    # The relay comes first: its line is driven to "locked" before anything else runs.
    relay = claim_relay_pin(cfg.door.relay_pin, cfg.door.relay_active_high, factory)
    stack.callback(relay.close)
    faults = Faults()  # before the rest: any part may raise one while it is built
    last_event = latest_journal_time(cfg.journal_path)  # evidence, before we add any
    journal = Journal(cfg.journal_path, cfg.gate.id)
    stack.callback(journal.close)
    recorder = Recorder(journal, faults)
    clock = TrustedClock(cfg.gate.state_dir / "clock.json",
                         on_fault=lambda active, behind_s: _clock_fault(recorder, active,
                                                                        behind_s))
    if last_event is not None:
        clock.observe(last_event)
    stack.callback(clock.save)
    lockout = Lockout(lockout_rule(cfg.lockout), on_change=lambda locked, denials:
                      _lockout_changed(journal, locked, denials))
    metrics = GateMetrics(cfg.gate.id) if cfg.metrics is not None else None
    if metrics is not None:  # counts from the first event on
        journal.subscribe(metrics.observe)
    lockdown = Lockdown(cfg.lockdown_path)
    last_status = stack.enter_context(contextlib.ExitStack())  # after the door has closed
    door_events = DoorEvents(recorder, stop)
    door = Door(relay, on_change=door_events.changed, on_fault=door_events.fault)
    stack.callback(door.close)
    indicators = build_indicators(cfg, factory)
    stack.callback(indicators.close)
    door_events.follow(lambda state: indicators.door_changed(state == "unlocked"))
    indicators.set_lockdown(lockdown.on)
    faults.bind(indicators.set_fault)
    if door.failed is not None:  # a retried lock at start failed for good
        raise RelayFault(door.failed)
    door_io = DoorIO(cfg.inputs, door, journal, stack, open_s=cfg.door.open_s,
                     held_open_s=cfg.door.held_open_s, grace_s=cfg.door.forced_open_grace_s,
                     pin_factory=factory)
    # First: an opening right now must see the relay as it is.
    door_events.follow(door_io.relay_changed, first=True)
    store = CredentialStore(cfg.credentials_path)
    stack.callback(store.close)
    passes = build_passes(cfg, stack)  # signed passes: keys, revocations, the verifier
    online, sync, workers, occupancy = _server_parts(cfg, checked.token, recorder, store,
                                                     clock, stack, passes)
    readers = tuple(_reader(part) for part in (online, sync) if part is not None)
    board = StatusBoard(cfg.gate.id, StatusWriter(cfg.status_path), door=door, door_io=door_io,
                        journal=journal, store=store, faults=faults, lockdown=lockdown,
                        reachable=Reachability(cfg.server is not None, readers),
                        fail_mode=cfg.door.fail_mode, occupancy=occupancy)
    last_status.callback(board.write, "stopped")
    door_events.on_fatal(board.write)
    board.write("starting")
    list_watcher = ListWatcher(store, cfg.list.path, cfg.list.watch_interval_s, journal,
                               on_fault=lambda on: faults.set("allowlist", on))
    list_watcher.load_now()  # a missing or broken list stops us here, relay locked
    list_watcher.start()
    stack.callback(list_watcher.close)
    workers.insert(0, JournalPruner(journal, cfg.journal.retention_days,
                                    uploaded_only=cfg.server is not None))
    for worker in workers:
        worker.start()
        stack.callback(worker.close)
    chain = _chain(cfg, store, online, clock, lockout, lockdown, occupancy, passes)
    scanner = Scanner.from_config(cfg.decoder)
    source = open_source(cfg.camera, stop)
    stack.callback(source.close)
    frames = None
    if cfg.camera.record_dir is not None:
        frames = FrameRecorder(cfg.camera.record_dir, cfg.camera.record_keep)
        stack.callback(frames.close)
    return GateParts(cfg, run_settings(cfg), stack, faults, recorder, clock, lockout, lockdown,
                     door, door_events, indicators, door_io, store, list_watcher, workers,
                     online, sync, board, chain, scanner, source, metrics, occupancy,
                     passes, frames=frames)


def _chain(cfg: Config, store: CredentialStore, online: ServerCheck | None,
           clock: TrustedClock, lockout: Lockout, lockdown: Lockdown,
           occupancy: OccupancyGuard | None, passes: PassParts | None
           ) -> LockdownChain | OccupancyChain:
    """The verifier chain, inside lockdown, inside the occupancy step (outermost)."""
    chain = LockdownChain(build_chain(cfg, store, online, clock=clock, lockout=lockout,
                                      passes=passes.verifier if passes else None), lockdown)
    return chain if occupancy is None else OccupancyChain(chain, occupancy)


def _reader(part: ServerCheck | CredentialSync) -> Callable[[], bool | None]:
    return lambda: part.reachable


def _server_parts(cfg: Config, token: str | None, recorder: Recorder, store: CredentialStore,
                  clock: TrustedClock, stack: contextlib.ExitStack, passes: PassParts
                  ) -> tuple[ServerCheck | None, CredentialSync | None, list[Worker],
                             OccupancyGuard | None]:
    """Online verifier, credential sync, journal upload and (at a counting site) the lease
    worker, not started; each its own client, since a requests.Session is not meant to be
    shared between threads."""
    server = cfg.server
    if server is None or token is None:
        return None, None, [], None
    journal = recorder.journal

    def client() -> ServerClient:
        c = ServerClient(server, cfg.gate.id, token)
        c.on_server_time = clock.server_time
        stack.callback(c.close)
        return c

    online = ServerCheck(client(), server.timeout_s, cfg.policy.status)
    stack.callback(online.close)
    sync = CredentialSync(client(), store, server.sync_interval_s)
    workers: list[Worker] = [sync]
    occupancy = _occupancy_parts(cfg, recorder, client(), stack, workers)
    workers.append(EventUploader(client(), journal, server.upload_interval_s,
                                 server.upload_batch, server.upload_max_backoff_s))
    workers.append(passes.sync_worker(client(), server))
    return online, sync, workers, occupancy


def _occupancy_parts(cfg: Config, recorder: Recorder, client: ServerClient,
                     stack: contextlib.ExitStack, workers: list[Worker]
                     ) -> OccupancyGuard | None:
    """Occupancy at a site (`[gate] site` with a server): the guard that counts each grant
    when the door opens, and the lease worker (issue 12)."""
    if cfg.gate.site is None:
        return None
    store = OccupancyStore(cfg.occupancy_path)
    stack.callback(store.close)
    guard = OccupancyGuard(
        store, cfg.gate.direction, has_contact=cfg.inputs.door_contact_pin is not None,
        open_s=cfg.door.open_s, max_open_s=cfg.door.max_open_s,
        grace_s=cfg.door.forced_open_grace_s, max_keys=cfg.occupancy.passback_max_keys,
        on_alarm=lambda alarm, by: recorder.record(AlarmEvent(alarm, "raised",
                                                              extra={"source": by})))
    recorder.journal.subscribe(guard.observe)  # the contact's `open` commits grants
    worker = LeaseWorker(client, store, guard.report, guard.accept,
                         cfg.occupancy.lease_interval_s)
    guard.on_passage = worker.trigger
    workers.append(worker)
    return guard


def start_fleet(parts: GateParts, gate: Runner) -> None:
    """MQTT and metrics last: off the door path, and only once the door can decide."""
    cfg, journal = parts.config, parts.recorder.journal
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
        remote = RemoteControl(parts.door, journal, parts.lockdown, gate.remote_unlock,
                               gate.lockdown_changed,
                               parts.sync.trigger if parts.sync is not None
                               else parts.list_watcher.trigger)
        fleet = parts.fleet = FleetBus(settings, cfg.gate.id, cfg.server is not None, remote,
                                       parts.metrics.count_mqtt if parts.metrics else None)
        journal.subscribe(fleet.observe)
        fleet.observe_status(parts.board.fleet_view())
        parts.board.followers.append(fleet.observe_status)
        fleet.start()
        parts.stack.callback(fleet.close)
    if parts.metrics is not None and cfg.metrics is not None:
        bus = parts.fleet
        reachable = parts.board.reachable
        parts.metrics.bind(Readings(
            server_reachable=lambda: _num(reachable()),
            cache_age_s=parts.board.cache_age_s,
            outbox_size=journal.pending_count if cfg.server is not None else lambda: None,
            # The uploader keeps no dead letters yet: NaN, not a made-up zero.
            dead_letters=lambda: None,
            mqtt_connected=(lambda: float(bus.connected)) if bus else lambda: None))
        host, port = parse_listen(cfg.metrics.listen)
        bound = parts.metrics.serve(host, port)
        parts.stack.callback(parts.metrics.close)
        log.info("metrics: http://%s:%d/metrics", host, bound)


def apply_config(parts: GateParts, new: Config) -> Changes:
    """SIGHUP: hand the live keys to each part; keys the schema marks `restart` keep their
    running value (the relay, camera and sockets are never rebuilt here). Replaces
    `parts.config`, `parts.settings` and `parts.chain`."""
    changes = diff(parts.config, new)
    for key in changes.restart_needed:
        log.warning("reload: %s changed; it takes effect after a restart", key)
    cfg = parts.config = effective(parts.config, new, changes)
    parts.settings = run_settings(cfg)
    parts.door_io.reconfigure(
        held_open_s=cfg.door.held_open_s, forced_open_grace_s=cfg.door.forced_open_grace_s,
        staff_window_s=cfg.inputs.staff_window_s, open_s=cfg.door.open_s)
    parts.indicators.reconfigure(cfg.indicators)
    parts.scanner.reconfigure(cfg.decoder)
    parts.list_watcher.retarget(cfg.list.path, cfg.list.watch_interval_s)
    if parts.online is not None:
        parts.online.status_map = cfg.policy.status
    parts.lockout.reconfigure(lockout_rule(cfg.lockout))
    if parts.passes is not None:
        parts.passes.reconfigure(cfg)
    parts.chain = _chain(cfg, parts.store, parts.online, parts.clock, parts.lockout,
                         parts.lockdown, parts.occupancy, parts.passes)
    return changes


def _clock_fault(recorder: Recorder, active: bool, behind_s: float) -> None:
    """The wall clock fell behind the trusted time (or caught up): a `clock` fault."""
    recorder.faults.set("clock", active)
    with contextlib.suppress(Exception):
        recorder.journal.record(SystemEvent("clock_fault" if active else "clock_ok",
                                            extra={"behind_s": round(behind_s, 1)}))


def _lockout_changed(journal: Journal, locked: bool, denials: int) -> None:
    """Too many denials locked the scanner (or the cooldown ended): a `lockout` alarm."""
    extra = {"denials": denials} if locked else {}
    journal.record(AlarmEvent("lockout", "raised" if locked else "cleared",
                              extra=extra))  # each locked_out decision shows the denied pattern


def _num(value: bool | None) -> float | None:
    return None if value is None else float(value)
