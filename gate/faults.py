"""The gate's active faults: one owner, one lock, for the loop, the door timer and the GPIO
and MQTT threads that raise and clear them."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Faults:
    """A set of fault names. `on_change(any_active)` runs whenever the set goes from empty
    to not or back, and once when it is bound. It runs under the lock, so that two threads'
    changes reach it in the order they happened; it must not call back into Faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: set[str] = set()
        self._on_change: Callable[[bool], None] | None = None

    def bind(self, on_change: Callable[[bool], None]) -> None:
        """Route changes to `on_change` (the indicators, once they exist) and show the
        current state there now."""
        with self._lock:
            self._on_change = on_change
            on_change(bool(self._active))

    def set(self, name: str, on: bool) -> None:
        with self._lock:
            if on == (name in self._active):
                return
            before = bool(self._active)
            if on:
                self._active.add(name)
            else:
                self._active.discard(name)
            if self._on_change is not None and before != bool(self._active):
                self._on_change(bool(self._active))

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._active)

    def __contains__(self, name: object) -> bool:
        with self._lock:
            return name in self._active

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._active)
