"""``fwadvisor serve``: gunicorn serving the app, plus one job worker process.

The worker is a child process, restarted if it dies (a SIGKILLed worker's job is then
retried by the heartbeat rule), stopped when the server stops, and killed by the
kernel if the server itself is SIGKILLed (``probes.lifeline``).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from probes.lifeline import child_env
from service.app import create_app
from service.settings import ServiceSettings

log = logging.getLogger("fwadvisor.serve")


class WorkerSupervisor(threading.Thread):
    """Keeps one ``fwadvisor worker`` running until ``stop``."""

    def __init__(self, backoff_s: float = 1.0) -> None:
        super().__init__(daemon=True, name="worker-supervisor")
        self.backoff_s = backoff_s
        self.stopping = threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts = 0

    def _spawn(self) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "service.cli", "worker"]
        return subprocess.Popen(cmd, env=child_env(dict(os.environ)))

    def run(self) -> None:
        while not self.stopping.is_set():
            self.proc = self._spawn()
            code = self.proc.wait()
            if self.stopping.is_set():
                return
            self.restarts += 1
            log.warning("job worker exited with %s; restarting", code)
            self.stopping.wait(self.backoff_s)

    def stop(self, timeout_s: float = 15.0) -> None:
        self.stopping.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # the worker requeues its job and exits
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Server(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: ServiceSettings, options: dict[str, Any]) -> None:
        self.settings, self.options = settings, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return create_app(self.settings)


def serve(
    settings: ServiceSettings,
    host: str = "127.0.0.1",
    port: int = 8000,
    web_workers: int = 2,
    threads: int = 4,
    worker: bool = True,
) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    supervisor = WorkerSupervisor() if worker else None
    options: dict[str, Any] = {
        "bind": f"{host}:{port}",
        "workers": web_workers,
        "worker_class": "gthread",
        "threads": threads,
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "fwadvisor-web",
    }
    if supervisor is not None:
        options["on_exit"] = lambda _server: supervisor.stop()
        supervisor.start()
    try:
        Server(settings, options).run()
    finally:
        if supervisor is not None:
            supervisor.stop()
