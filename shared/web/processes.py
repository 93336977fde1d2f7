"""Several processes of one service on one port (``TL_<SERVICE>_HTTP_PROCESSES``).

A command service's HTTP path is bound by its interpreter: one process kept one core busy
at about 200 commands a second while the machine's other core idled
(docs/performance.md, ``bench.commands``). With ``N`` processes the first starts the
others (the same command line, ``sys.orig_argv``); each binds the port with
``SO_REUSEPORT`` and the kernel spreads the connections between them. Every process
runs the whole service, which is safe because each part already allows another copy:

- the relay of a topic holds a PostgreSQL advisory lock; the others wait as standbys;
- the local views and the revocations view are fed in one consumer group, into the
  service's database, by version (a record applied twice changes nothing);
- the event store's optimistic concurrency and the facts written in a save's
  transaction hold across processes, as they hold across threads.

Nothing fails silently: when one of the processes ends, the first stops the service and
exits 1, so that whatever supervises it (compose, systemd) starts it again whole. What
each process answers for itself: ``/metrics`` counts the requests of the process that
takes the scrape's connection, and ``/ready`` checks that process's workers.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from shared.kernel.settings import ServiceSettings, SettingsError

log = logging.getLogger(__name__)

PROCESS_NUMBER = "TL_HTTP_PROCESS"  # set in the processes the first one starts: 1, 2, ...
STOP_TIMEOUT = 30.0  # seconds a process has to stop before it is killed
STOPPING_SIGNALS = (signal.SIGTERM, signal.SIGINT)


# Set by ``shared.web.runner.serve`` once this process serves (its tables made, its views
# open): the others start then, so that they never race it to create the store's tables.
SERVING = threading.Event()


@contextmanager
def other_processes(service: str, *, allowed: bool = True) -> Iterator[None]:
    """Start the service's other processes once this one serves (none: 1, the default),
    and stop them when it ends; exit 1 if one of them ended first. ``allowed``: False for
    a service that must be one process (projections: one ingester a study ledger;
    identity: its password-attempt budgets are in the process's memory)."""
    count = ServiceSettings.from_env(service).http_processes
    if count > 1 and not allowed:
        raise SettingsError(f"{service} runs as one process: TL_{service.upper()}_HTTP_PROCESSES "
                            f"must be 1, got {count}")  # fmt: skip
    if count == 1 or os.environ.get(PROCESS_NUMBER):
        yield
        return
    others: list[subprocess.Popen[bytes]] = []
    stopping, ended = threading.Event(), threading.Event()
    watcher = threading.Thread(target=_supervise, args=(service, count, others, stopping, ended),
                               daemon=True)  # fmt: skip
    # uvicorn handles SIGTERM and SIGINT while it serves, then raises the signal again
    # with the handlers it found: these, so that the others are stopped before this ends
    previous = {number: signal.signal(number, _exit_on) for number in STOPPING_SIGNALS}
    watcher.start()
    try:
        yield
    finally:
        stopping.set()
        watcher.join()
        _stop(others)
        for number, handler in previous.items():
            signal.signal(number, handler)
        if ended.is_set():
            raise SystemExit(1)


def _exit_on(number: int, frame: object) -> None:
    raise SystemExit(128 + number)  # as a shell reports a process a signal ended


def _supervise(
    service: str, count: int, others: list[subprocess.Popen[bytes]],
    stopping: threading.Event, ended: threading.Event,
) -> None:  # fmt: skip
    """Once this process serves, start the others; then stop this process (as a signal
    would) when one of them ends while the service runs."""
    while not SERVING.wait(0.5):
        if stopping.is_set():
            return
    for number in range(1, count):
        environment = {**os.environ, PROCESS_NUMBER: str(number)}
        others.append(subprocess.Popen(sys.orig_argv, env=environment))  # noqa: S603 (this command)
    log.info("service processes started service=%s processes=%d pids=%s", service, count,
             ",".join(str(p.pid) for p in others))  # fmt: skip
    while not stopping.wait(0.5):
        gone = [p for p in others if p.poll() is not None]
        if gone:
            log.error("service process ended, stopping the service service=%s pid=%d exit=%s",
                      service, gone[0].pid, gone[0].returncode)  # fmt: skip
            ended.set()
            os.kill(os.getpid(), signal.SIGTERM)
            return


def _stop(others: list[subprocess.Popen[bytes]]) -> None:
    for process in others:
        if process.poll() is None:
            process.terminate()
    for process in others:
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
