"""Background work a process repeats while it runs: worker heartbeats, the task reaper."""
from __future__ import annotations

import logging
import threading
from typing import Callable

log = logging.getLogger(__name__)


class Periodic:
    """Runs ``action`` at ``start`` and then every ``interval`` seconds in a daemon thread until stopped.

    A run that fails is logged and the next one tries again: the work is of the kind that
    catches up (a heartbeat, a reaper pass), so one missed run is harmless.
    """

    def __init__(self, name: str, interval: float, action: Callable[[], object]) -> None:
        self.name = name
        self.interval = interval
        self.action = action
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> "Periodic":
        self._run()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        try:
            self.action()
        except Exception:  # noqa: BLE001 - the next run may get through
            log.warning("%s failed; trying again in %.0f s", self.name, self.interval, exc_info=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._run()
