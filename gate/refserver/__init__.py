"""Reference central server for the v1 gate API: SQLite-backed, stdlib only, for tests and trials."""

from __future__ import annotations

from .cli import main
from .server import ReferenceServer, server_ssl_context
from .store import Credential, CredentialsPage, IngestResult, Store, StoredEvent, Verdict, sha256_hex

__all__ = ["Credential", "CredentialsPage", "IngestResult", "ReferenceServer", "Store",
           "StoredEvent", "Verdict", "main", "server_ssl_context", "sha256_hex"]
