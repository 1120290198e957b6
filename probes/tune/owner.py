"""Who runs a tuning trial, and failing the trials whose runner is gone, with a reason.

Every trial records its owner (host, pid, the pid's start time and, inside a job, the
job and attempt). Before a study resumes, each RUNNING trial is failed with a reason if:

- its job was retried (``owner_scope`` names a later attempt of the same job): the old
  attempt's worker died or was lost, wherever it ran;
- it ran on this host in a process that no longer exists (a tuner killed and rerun at
  once: Optuna's heartbeat rule would wait out its 60 s grace);
- its heartbeat is older than the grace period (a tuner on another machine died).

A failed trial's default or informed start is queued again, so a retry still measures
each framework's default configuration (the baseline every speed-up is relative to).
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

OWNER = "owner"  # user attr: owner_tag() of the process that asked the trial
ABANDONED = "abandoned"  # user attr: failed here; spent no result, so not in the budget
_scope: dict[str, Any] = {}


@contextlib.contextmanager
def owner_scope(job: str, attempt: int) -> Iterator[None]:
    """Trials asked inside are tagged with this job attempt (the job worker's)."""
    _scope.update(job=job, attempt=attempt)
    try:
        yield
    finally:
        _scope.clear()


def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (Linux), to tell a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def owner_tag() -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "started": _start_ticks(pid), **_scope}


def _alive(pid: int, started: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started is None or _start_ticks(pid) in (None, started)


def abandoned(tag: Any) -> str | None:
    """Why the trial owned by ``tag`` can never finish, or None if it still may."""
    if not isinstance(tag, dict):
        return None
    job, attempt = _scope.get("job"), _scope.get("attempt", 0)
    if job is not None and tag.get("job") == job and int(tag.get("attempt", 0)) < attempt:
        return (
            f"abandoned: attempt {tag.get('attempt')} of job {job} was retried as attempt "
            f"{attempt} (its worker died or was lost mid-trial)"
        )
    pid = tag.get("pid")
    if (
        tag.get("host") == socket.gethostname()
        and isinstance(pid, int)
        and not _alive(pid, tag.get("started"))
    ):
        return f"abandoned: its tuner (pid {pid}) is no longer running (killed or crashed)"
    return None


def _stale_ids(study: optuna.Study) -> set[int]:
    storage = study._storage
    if getattr(storage, "get_heartbeat_interval", lambda: None)() is None:
        return set()
    return set(storage._get_stale_trial_ids(study._study_id))  # type: ignore[attr-defined]


def fail_abandoned(study: optuna.Study, grace_s: int) -> list[FrozenTrial]:
    """Fail (with a reason) every RUNNING trial that can never finish; requeue the
    default and informed starts among them. Returns the trials failed."""
    stale = _stale_ids(study)
    storage = study._storage
    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        why = abandoned(t.user_attrs.get(OWNER))
        if why is None and t._trial_id in stale:
            why = f"abandoned: no heartbeat for over {grace_s} s (its tuner died or hung)"
        if why is None:
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, ABANDONED, True)
            storage.set_trial_user_attr(t._trial_id, "reason", why)
            storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
        except (optuna.exceptions.UpdateFinishedTrialError, RuntimeError):
            continue  # another process settled it meanwhile
        failed.append(t)
        source = t.user_attrs.get("source")
        # The enqueued point, not ``t.params``: a tuner killed while it was suggesting
        # leaves only some params set, and requeuing those let the sampler fill in the
        # rest (a "default" that was not the default; CI saw one pruned as invalid).
        params = t.system_attrs.get("fixed_params") or t.params
        if source in ("default", "informed") and params:
            study.enqueue_trial(dict(params), user_attrs={"source": source, "retry_of": t.number})
    return failed
