"""A tuner that dies mid-trial (killed, or its job's worker lost): the next run fails the
trial at once, with a reason, and still measures each framework's default (issue 19)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from probes.probe import Prober
from probes.protocol import ProbeRequest, ProbeResult
from probes.tune.compare import tune
from probes.tune.models import TuneConfig
from probes.tune.owner import owner_scope
from tests.conftest import zoo_spec
from tests.tuning_fakes import FakeRunner

ROOT = Path(__file__).resolve().parent.parent


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/optuna.sqlite3"


def _trials(tmp_path: Path) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.RDBStorage(_url(tmp_path))
    try:
        return optuna.load_study(study_name=None, storage=storage).get_trials()
    except (KeyError, ValueError):
        return []


def _check_report(rep: object) -> None:
    fw = rep.frameworks[0]  # type: ignore[attr-defined]
    assert all(t.reason for t in fw.history if t.state == "FAIL"), fw.history
    assert not [t for t in fw.history if t.state == "RUNNING"]
    assert fw.default is not None and fw.default.state == "COMPLETE"  # the baseline


def test_a_killed_tuner_rerun_at_once_fails_its_trial_with_a_reason(tmp_path: Path) -> None:
    """Rerun right away, well inside Optuna's 60 s stale-trial grace."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from probes.probe import Prober
        from probes.tune.models import TuneConfig
        from probes.tune.compare import tune
        from tests.conftest import zoo_spec
        from tests.tuning_fakes import FakeRunner
        tune(zoo_spec("mlp"), TuneConfig(n_trials=4, seed=3), Prober(FakeRunner(sleep_s=60)),
             {_url(tmp_path)!r}, ("torch",))
    """)
    child = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while not any(t.state == TrialState.RUNNING and t.params for t in _trials(tmp_path)):
        assert time.monotonic() < deadline and child.poll() is None, "no trial started"
        time.sleep(0.2)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    cfg = TuneConfig(n_trials=4, seed=3)
    rep = tune(zoo_spec("mlp"), cfg, Prober(FakeRunner()), _url(tmp_path), ("torch",))
    killed = next(t for t in rep.frameworks[0].history if t.number == 0)
    assert killed.state == "FAIL" and killed.reason is not None
    assert f"pid {child.pid}" in killed.reason and "no longer running" in killed.reason
    _check_report(rep)


class CrashOnce(FakeRunner):
    """The first probe never returns: its worker process "dies" (the exception unwinds
    the tuner, leaving the trial RUNNING, as a SIGKILL would)."""

    def __init__(self) -> None:
        super().__init__()
        self.crashed = False

    def run(self, request: ProbeRequest) -> ProbeResult:
        if not self.crashed and request.workload.kind != "peak":
            self.crashed = True
            raise KeyboardInterrupt("worker killed")
        return super().run(request)


def test_a_retried_job_fails_its_earlier_attempts_running_trials(tmp_path: Path) -> None:
    """The earlier attempt's process is alive here (same process), so only the job's
    attempt number can tell its trial is abandoned: as for a worker on another host."""
    # a budget of 2: the informed starts queued before the requeued default spend it
    runner, cfg = CrashOnce(), TuneConfig(n_trials=2, seed=1)
    with owner_scope("job-1", 1), pytest.raises(KeyboardInterrupt):
        tune(zoo_spec("mlp"), cfg, Prober(runner), _url(tmp_path), ("torch",))
    assert _trials(tmp_path)[0].state == TrialState.RUNNING
    with owner_scope("job-1", 2):
        rep = tune(zoo_spec("mlp"), cfg, Prober(runner), _url(tmp_path), ("torch",))
    first = rep.frameworks[0].history[0]
    assert first.state == "FAIL" and "attempt 1 of job job-1 was retried as attempt 2" in (
        first.reason or ""
    )
    _check_report(rep)


def test_another_jobs_running_trial_is_left_alone(tmp_path: Path) -> None:
    """A RUNNING trial of a live tuner in another job is not ours to fail."""
    runner, cfg = CrashOnce(), TuneConfig(n_trials=2, seed=1)
    with owner_scope("job-a", 1), pytest.raises(KeyboardInterrupt):
        tune(zoo_spec("mlp"), cfg, Prober(runner), _url(tmp_path), ("torch",))
    with owner_scope("job-b", 1):
        tune(zoo_spec("mlp"), cfg, Prober(runner), _url(tmp_path), ("torch",))
    assert _trials(tmp_path)[0].state == TrialState.RUNNING


def test_a_tuner_killed_while_suggesting_requeues_the_whole_enqueued_point(
    tmp_path: Path,
) -> None:
    """Killed after the first of its suggest calls, a trial holds only some params:
    the requeued default must be the enqueued point, not those params plus whatever the
    sampler adds (CI once saw such a "default" pruned as an invalid combination)."""
    from probes.tune.owner import OWNER, fail_abandoned

    study = optuna.create_study(storage=_url(tmp_path))
    point = {"intra_threads": 2, "precision": "fp32", "mode": "eager"}
    study.enqueue_trial(point, user_attrs={"source": "default"})
    trial = study.ask()
    trial.suggest_categorical("intra_threads", [1, 2])  # then the tuner is killed
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    trial.set_user_attr(OWNER, {"host": os.uname().nodename, "pid": dead.pid, "started": 1})
    assert [t.number for t in fail_abandoned(study, 60)] == [0]
    requeued = study.get_trials(states=(TrialState.WAITING,))
    assert [t.system_attrs["fixed_params"] for t in requeued] == [point]
    assert requeued[0].user_attrs["source"] == "default"
