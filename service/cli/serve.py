"""``fwadvisor serve``: gunicorn serving the app, plus one job worker process.

The ``serve`` process is a small supervisor with two children: the gunicorn master
(``python -m service.cli.serve``) and ``fwadvisor worker``. Gunicorn reaps every child of
its master, so the job worker must not be one of them. The worker is restarted if it
dies (a SIGKILLed worker's job is then retried by the heartbeat rule); SIGTERM or SIGINT
stops both (the worker requeues its job); and both children die with the supervisor,
even if it is SIGKILLed (``probes.runners.lifeline``).
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication  # type: ignore[import-untyped]

from probes.runners.lifeline import child_env, die_with_parent
from recommender.knowledge.capabilities import load_matrix
from recommender.knowledge.ecosystem import load_ecosystem
from recommender.predictor.cache import load_compiled
from recommender.predictor.choose import choose
from recommender.questionnaire import load_questionnaire
from service.api.server import install_problem_errors, quiet_teardown
from service.app import create_app
from service.jobs.store import JobStore
from service.settings import ServiceSettings

log = logging.getLogger("fwadvisor.serve")


class Child(threading.Thread):
    """Runs ``cmd`` until ``stop``; restarts it when it exits if ``restart``."""

    def __init__(self, name: str, cmd: list[str], restart: bool, done: threading.Event) -> None:
        super().__init__(daemon=True, name=name)
        self.cmd, self.restart, self.done = cmd, restart, done
        self.stopping = threading.Event()
        self.proc: subprocess.Popen[bytes] | None = None
        self.code: int | None = None

    def run(self) -> None:
        while not self.stopping.is_set():
            self.proc = subprocess.Popen(self.cmd, env=child_env(dict(os.environ)))
            self.code = self.proc.wait()
            if self.stopping.is_set() or not self.restart:
                break
            log.warning("%s exited with %s; restarting", self.name, self.code)
            self.stopping.wait(1.0)
        self.done.set()

    def stop(self, timeout_s: float) -> None:
        self.stopping.set()
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve(
    settings: ServiceSettings,
    host: str = "127.0.0.1",
    port: int = 8000,
    web_workers: int = 2,
    threads: int = 4,
    worker: bool = True,
    worker_class: str = "gevent",
) -> int:
    say = "the web server" + (" and a job worker" if worker else "")
    print(f"fwadvisor serve: starting {say} on {host}:{port} ...", file=sys.stderr, flush=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    JobStore(settings.job_db_url()).engine.dispose()  # the schema, before any child
    load_compiled(settings)  # build the predictor once, not in each web process
    done = threading.Event()
    web_cmd = [
        sys.executable,
        "-m",
        "service.cli.serve",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(web_workers),
        "--threads",
        str(threads),
        "--worker-class",
        worker_class,
    ]
    children = [Child("web", web_cmd, restart=False, done=done)]
    if worker:
        work_cmd = [sys.executable, "-m", "service.cli.main", "worker"]
        children.append(Child("job worker", work_cmd, restart=True, done=threading.Event()))

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: stopping", signal.Signals(signum).name)
        done.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, on_signal)
    for c in children:
        c.start()
    done.wait()
    for c in reversed(children):  # the worker first: it requeues its job
        c.stop(timeout_s=20)
    return children[0].code or 0


class WebServer(BaseApplication):  # type: ignore[misc]
    """Gunicorn with the app from ``create_app``; gevent workers by default, no preload
    (each process opens its own database pool)."""

    def __init__(self, settings: ServiceSettings, options: dict[str, Any]) -> None:
        self.settings, self.options = settings, options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        return create_app(self.settings)


#: --worker-class -> gunicorn's worker class. gevent (the default) serves each connection
#: in a greenlet, so slow clients cannot starve it (docs/architecture.md).
WORKER_CLASSES = {
    "gevent": "service.api.server.SlowClientWorker",
    "gthread": "gthread",
    "sync": "sync",
}


def _warm_and_freeze(_worker: Any) -> None:
    """Load what a request reads (predictors, questionnaire, matrix, priors), then move
    every object to the permanent generation: a full collection over them cost ~30 ms,
    which was the p99 of an idle server."""
    install_problem_errors()  # gunicorn's own 4xx as problem+json
    settings = ServiceSettings()
    load_compiled(settings)
    try:  # this machine's calibration, fitted (1.5 s inside the first request before)
        choose(settings)
    except Exception:  # a warm-up only: the request that needs it reports the failure
        logging.getLogger("fwadvisor.serve").exception("predict mode's calibration: no warm-up")
    load_questionnaire()
    load_matrix()
    load_ecosystem()
    gc.freeze()


def _listening(host: str, port: int) -> Callable[[Any], None]:
    """gunicorn's when_ready hook: the socket is bound, so the URL works from now on."""

    def say(_arbiter: Any) -> None:
        url = f"http://{host}:{port}/"
        print(
            f"fwadvisor serve: listening on {url} (questionnaire), {url}docs (API); Ctrl-C stops",
            file=sys.stderr,
            flush=True,
        )

    return say


def main() -> None:
    p = argparse.ArgumentParser(description="the gunicorn half of `fwadvisor serve`")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument("--worker-class", choices=sorted(WORKER_CLASSES), default="gevent")
    args = p.parse_args()
    die_with_parent()
    options = {
        "bind": f"{args.host}:{args.port}",
        "workers": args.workers,
        "worker_class": WORKER_CLASSES[args.worker_class],
        "threads": args.threads,  # gthread only
        "worker_connections": 1000,  # gevent: connections per process
        "keepalive": 5,  # gevent: also the deadline for a request's headers
        "timeout": 60,
        "graceful_timeout": 10,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": "fwadvisor-web",
        "post_worker_init": _warm_and_freeze,
        "when_ready": _listening(args.host, args.port),
        "worker_exit": quiet_teardown,
    }
    WebServer(ServiceSettings(), options).run()


if __name__ == "__main__":
    main()
