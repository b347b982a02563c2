"""Wiring of signed passes at the gate (kept out of daemon.py): the key ring and revocation
set in state_dir, the offline verifier for the chain, and the sync worker when a server is
configured."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from ..config import Config, ServerSection
from ..errors import ConfigError
from ..passes.keys import KeysFileError
from ..passes.revocations import RevocationStore
from ..verify.signed import SitePasses
from .client import ServerClient
from .keysync import PassKeys, PassSync

REVOCATIONS_FILE = "revocations.db"


@dataclass
class PassParts:
    keys: PassKeys
    revocations: RevocationStore
    verifier: SitePasses

    def reconfigure(self, cfg: Config) -> None:
        """The live keys of a reload: site, time zone, key age and rotation window."""
        p = cfg.passes
        self.verifier.reconfigure(cfg.gate.site or "", ZoneInfo(cfg.gate.timezone),
                                  p.max_key_age_s,
                                  p.rotation_window_steps)

    def sync_worker(self, client: ServerClient, server: ServerSection) -> PassSync:
        return PassSync(client, self.keys, self.revocations, server.sync_interval_s)


def build_passes(cfg: Config, parts: contextlib.ExitStack) -> PassParts:
    """A keys_file that does not load is a config error (the door stays locked)."""
    state_dir = cfg.gate.state_dir
    try:
        keys = PassKeys(state_dir, cfg.passes.keys_file)
    except KeysFileError as exc:
        raise ConfigError([f"[passes] keys_file: {p}" for p in exc.problems]) from None
    revocations = RevocationStore(state_dir / REVOCATIONS_FILE)
    parts.callback(revocations.close)
    p = cfg.passes
    # keys_file alone never ages (synced_at None); synced keys age from the last good sync
    verifier = SitePasses(keys.ring, keys.rotation_keys, revocations, cfg.gate.site or "",
                          ZoneInfo(cfg.gate.timezone), p.max_key_age_s,
                          p.rotation_window_steps)
    return PassParts(keys, revocations, verifier)
