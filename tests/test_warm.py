"""Warm workers: reuse per process-level settings, a bounded pool, a crashed, hung or
over-memory worker failing its own probe (as a fresh process would) and replaced, the
fallback to fresh processes, and no worker outliving its parent. Fake workers speak the
warm protocol (`probes.worker.serve`); one test runs the real PyTorch worker."""

from __future__ import annotations

import dataclasses
import gc
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from probes.config import Settings
from probes.frameworks.facts import FACTS, facts
from probes.measure.memory import peak_rss_bytes, reset_peak_rss
from probes.measure.timing import MeasureConfig
from probes.protocol import (
    ColdStartWorkload,
    ExportWorkload,
    InferWorkload,
    ProbeLimits,
    ProbeRequest,
    ProbeResult,
)
from probes.runners.local import SubprocessRunner, _GroupWatch
from probes.runners.warm import WarmPool, WarmRunner, local_runner
from probes.runners.warm_worker import WarmWorker
from probes.settings import Device, TFSettings, TorchSettings, worker_key
from probes.worker import preload
from probes.worker.serve import _is_preload, _preload
from recommender.evidence.gatherer import Gatherer
from service.cli.main import parser
from tests.conftest import zoo_spec
from tests.test_runner import alive

# seed 0: answer with the worker's pid, its compiler imports and oneDNN flag; 1: SIGSEGV;
# 2: hang (with a grandchild); 3: hoard memory; 4: exit without an answer
FAKE_WORKER = """
    import json, os, signal, subprocess, sys, time
    from probes.worker.serve import _watch_parent
    _watch_parent()
    key = json.loads(sys.argv[1])
    print(json.dumps({"ready": True}), flush=True)
    preloads, PRELOAD_REPLY = 0, json.loads('PRELOAD_REPLY_JSON')
    for line in sys.stdin:
        req = json.loads(line)
        if "preload" in req:
            preloads += 1
            print(json.dumps(PRELOAD_REPLY), flush=True)
            continue
        seed = req["seed"]
        if seed == 1:
            print("about to segfault", file=sys.stderr, flush=True)
            os.kill(os.getpid(), signal.SIGSEGV)
        if seed == 2:
            child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
            open(req["io_dir"] + "/grandchild.pid", "w").write(str(child.pid))
            time.sleep(600)
        if seed == 3:
            hoard = []
            while True:
                hoard.append(bytearray(16 * 2**20))
                time.sleep(0.01)
        if seed == 4:
            print("giving up", file=sys.stderr, flush=True)
            sys.exit(3)
        reason = f"{os.getpid()} {preloads} {key['onednn']}"
        print(json.dumps({"status": "ok", "framework": req["framework"], "reason": reason}),
              flush=True)
"""
FRESH = """
    import json, sys
    req = json.loads(sys.stdin.read())
    print(json.dumps({"status": "ok", "framework": req["framework"], "reason": "fresh"}))
"""
DEAD = "import sys; print('no framework here', file=sys.stderr); sys.exit(1)"


PRELOADED = {"preloaded_bytes": 7 * 2**20, "import_s": 0.1}


def fake_worker(preload_reply: object = PRELOADED) -> str:
    """FAKE_WORKER, answering a compiler preload with ``preload_reply``."""
    return FAKE_WORKER.replace("PRELOAD_REPLY_JSON", json.dumps(preload_reply))


def script(tmp_path: Path, name: str, text: str) -> list[str]:
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    return [sys.executable, str(path)]


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[WarmPool]:
    p = WarmPool(command=script(tmp_path, "warm", fake_worker()))
    yield p
    p.close_all()


def runner(tmp_path: Path, pool: WarmPool, timeout_s: float = 20) -> WarmRunner:
    fresh = SubprocessRunner(timeout_s=timeout_s, command=script(tmp_path, "fresh", FRESH))
    return WarmRunner(fresh, pool)


def request(tmp_path: Path, seed: int = 0, **settings: object) -> ProbeRequest:
    return ProbeRequest(
        spec=zoo_spec("mlp"),
        framework="torch",
        workload=InferWorkload(),
        settings=TorchSettings.model_validate(settings),
        seed=seed,
        io_dir=str(tmp_path),
    )


def pid(r: ProbeResult) -> int:
    assert r.status == "ok", r.reason
    return int((r.reason or "").split()[0])


def test_reused_for_the_same_process_settings(tmp_path: Path, pool: WarmPool) -> None:
    run = runner(tmp_path, pool)
    first = pid(run.run(request(tmp_path)))
    assert pid(run.run(request(tmp_path, precision="bf16", mode="compile"))) == first
    assert pool.started == 1


def tf_request(tmp_path: Path, device: Device = "cpu", **settings: object) -> ProbeRequest:
    return request(tmp_path).model_copy(
        update={
            "framework": "tensorflow",
            "settings": TFSettings.model_validate(settings),
            "device": device,
        }
    )


def test_keyed_by_the_onednn_flag_not_by_thread_counts(tmp_path: Path, pool: WarmPool) -> None:
    """Thread pools start at a process's first op, which a worker never runs: every
    thread count shares a worker. TF_ENABLE_ONEDNN_OPTS is read at import: it does not."""
    run = runner(tmp_path, pool)
    one = pid(run.run(request(tmp_path, intra_threads=1)))
    assert pid(run.run(request(tmp_path, intra_threads=2, inter_threads=1))) == one
    with_onednn = run.run(tf_request(tmp_path, intra_threads=1))
    without = run.run(tf_request(tmp_path, onednn=False))
    assert pid(with_onednn) != pid(without) and (without.reason or "").endswith(" False")
    assert pid(run.run(tf_request(tmp_path, intra_threads=2, inter_threads=2))) == pid(with_onednn)
    assert pool.started == 3


def test_pool_is_bounded_per_framework(tmp_path: Path, pool: WarmPool) -> None:
    run = runner(tmp_path, pool)
    reqs = [
        tf_request(tmp_path),
        tf_request(tmp_path, onednn=False),
        tf_request(tmp_path, device="cuda"),
    ]
    pids = [pid(run.run(r)) for r in reqs]
    assert len(pool.live()) == 2
    assert not alive(pids[0])  # the least recently used was closed
    assert {w.pid for w in pool.live()} == set(pids[1:])


def test_the_compiler_is_imported_once_per_worker_ahead_of_the_probes_that_use_it(
    tmp_path: Path, pool: WarmPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A compile or export probe has its worker import the compiler first, once; a probe
    without it has the import's bytes taken off its group's RSS (a fresh process would
    not have them), a probe with it does not (a fresh one would import them too)."""
    asked: list[tuple[str, int]] = []
    ask = WarmWorker.ask

    def spy(
        w: WarmWorker, r: ProbeRequest, t: float, limit: int | None, discount: int = 0
    ) -> ProbeResult:
        asked.append((r.workload.kind + "/" + r.effective_settings().mode, discount))
        return ask(w, r, t, limit, discount)

    monkeypatch.setattr(WarmWorker, "ask", spy)
    run = runner(tmp_path, pool)
    eager = request(tmp_path)
    export = request(tmp_path).model_copy(update={"workload": ExportWorkload(target="onnx")})
    got = [run.run(r) for r in (eager, request(tmp_path, mode="compile"), export, eager)]
    assert [(r.reason or "").split()[1] for r in got] == ["0", "1", "1", "1"]
    assert len({pid(r) for r in got}) == 1
    mib7 = 7 * 2**20
    assert asked == [
        ("infer/eager", 0),
        ("infer/compile", 0),
        ("export/eager", 0),
        ("infer/eager", mib7),
    ]
    assert pool.live()[0].compiler_bytes == mib7


@pytest.mark.parametrize("reply", [{"error": "ImportError: no inductor"}, "nonsense"])
def test_a_worker_that_cannot_import_its_compiler_is_dropped_and_not_asked_again(
    tmp_path: Path, reply: object
) -> None:
    pool = WarmPool(command=script(tmp_path, "warm", fake_worker(reply)))
    try:
        run = runner(tmp_path, pool)
        r = run.run(request(tmp_path, mode="compile"))
        assert r.status == "ok" and r.reason == "fresh"
        assert pool.started == 1 and not pool.live()
        # later compile probes import it in their child, as before: no restart each time
        again = [run.run(request(tmp_path, mode="compile")) for _ in range(2)]
        assert [(r.reason or "").split()[1] for r in again] == ["0", "0"]
        assert pool.started == 2 and len({pid(r) for r in again}) == 1
    finally:
        pool.close_all()


def test_a_compiler_that_fails_to_import_is_an_error_reply_not_a_dead_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`probes.worker.serve` answers the preload line with the error; the parent then
    drops the worker (above), and nothing is credited to later probes."""
    torch_facts = facts("torch")
    broken = dataclasses.replace(torch_facts, compiler_modules=("no_such_compiler_module",))
    monkeypatch.setitem(FACTS, "torch", broken)
    monkeypatch.setattr(preload, "imported_bytes", None)
    key = worker_key(TorchSettings())
    assert _is_preload('{"preload": "compiler"}') and not _is_preload('{"seed": 0}')
    reply = _preload(key)
    assert "ModuleNotFoundError" in str(reply.get("error")) and "preloaded_bytes" not in reply
    assert preload.baseline_credit(request(Path("."), mode="compile")) == 0


def test_the_memory_watch_takes_its_discount_off_the_group() -> None:
    """A process holding 200 MiB trips a 100 MiB limit, unless 150 MiB of it are
    discounted (the compiler import a fresh process would not have)."""
    hold = (
        "x = bytearray(200 * 2**20); x[::4096] = b'1' * len(x[::4096]); import time; time.sleep(30)"
    )
    tripped = []
    for discount in (0, 150 * 2**20):
        proc = subprocess.Popen([sys.executable, "-c", hold], text=True, start_new_session=True)
        try:
            watch = _GroupWatch(proc, 100 * 2**20, discount=discount)
            watch.start()
            watch.join(timeout=3)
            watch.done.set()
            watch.join()
            tripped.append(watch.tripped)
        finally:
            proc.kill()
            proc.wait()
    assert tripped == [True, False]


@pytest.mark.parametrize(
    ("seed", "status", "words"),
    [
        (1, "crashed", ["SIGSEGV", "about to segfault"]),
        (4, "failed", ["exit 3", "giving up"]),
    ],
)
def test_dead_worker_fails_its_probe_and_is_replaced(
    tmp_path: Path, pool: WarmPool, seed: int, status: str, words: list[str]
) -> None:
    run = runner(tmp_path, pool)
    before = pid(run.run(request(tmp_path)))
    r = run.run(request(tmp_path, seed=seed))
    assert r.status == status and all(w in (r.reason or "") for w in words), r.reason
    assert not alive(before)
    after = pid(run.run(request(tmp_path)))
    assert after != before and pool.started == 2


def test_hung_worker_times_out_group_killed_and_replaced(tmp_path: Path, pool: WarmPool) -> None:
    run = runner(tmp_path, pool, timeout_s=3)
    before = pid(run.run(request(tmp_path)))
    r = run.run(request(tmp_path, seed=2))
    assert r.status == "timeout" and r.reason == "no result within 3 s; process group killed"
    assert not alive(before)
    assert not alive(int((tmp_path / "grandchild.pid").read_text()))
    assert pid(run.run(request(tmp_path))) != before


def test_over_memory_worker_is_oom_and_replaced(tmp_path: Path, pool: WarmPool) -> None:
    run = runner(tmp_path, pool, timeout_s=60)
    before = pid(run.run(request(tmp_path)))
    limited = request(tmp_path, seed=3).model_copy(update={"limits": ProbeLimits(memory_mb=200)})
    r = run.run(limited)
    assert r.status == "oom" and "exceeded the 200 MiB limit" in (r.reason or "")
    assert r.peak_group_rss_bytes and r.peak_group_rss_bytes > 200 * 2**20
    assert not alive(before)
    assert pid(run.run(request(tmp_path))) != before


def test_workers_that_cannot_start_fall_back_to_fresh(tmp_path: Path) -> None:
    broken = WarmPool(command=[sys.executable, "-c", DEAD])
    run = runner(tmp_path, broken)
    assert [run.run(request(tmp_path)).reason for _ in range(3)] == ["fresh"] * 3
    assert broken.disabled and "no framework here" in broken.disabled
    assert broken.started == 0 and not broken.live()


def test_cold_starts_and_the_flag_use_fresh_processes(tmp_path: Path, pool: WarmPool) -> None:
    cold = request(tmp_path).model_copy(update={"workload": ColdStartWorkload()})
    assert runner(tmp_path, pool).run(cold).reason == "fresh" and pool.started == 0
    export = request(tmp_path).model_copy(update={"workload": ExportWorkload(target="onnx")})
    assert pid(runner(tmp_path, pool).run(export)) > 0 and pool.started == 1
    assert isinstance(local_runner(fresh=True), SubprocessRunner)
    assert isinstance(local_runner(), WarmRunner)


PARENT = """
    import os, signal, sys
    from probes.runners.local import SubprocessRunner, _GroupWatch
    from probes.runners.warm import WarmPool, WarmRunner
    from probes.protocol import ProbeRequest
    req = ProbeRequest.model_validate_json(sys.argv[2])
    pool = WarmPool(command=[sys.executable, sys.argv[1]])
    r = WarmRunner(SubprocessRunner(timeout_s=20), pool).run(req)
    print(r.reason.split()[0], flush=True)
    if sys.argv[3] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("how", ["exit", "kill"])
def test_workers_die_with_their_parent(tmp_path: Path, how: str) -> None:
    worker = script(tmp_path, "warm", fake_worker())[1]
    parent = script(tmp_path, "parent", PARENT)
    out = subprocess.run(
        [*parent, worker, request(tmp_path).model_dump_json(), how],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parent.parent,
        env={"PYTHONPATH": str(Path(__file__).parent.parent), "PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.strip().isdigit(), out.stderr
    assert not alive(int(out.stdout), wait_s=10)


def test_real_torch_worker_measures_each_probe_as_a_fresh_process(tmp_path: Path) -> None:
    """Each probe runs in a child forked from the worker, so its memory peak is the
    fresh process's, not a remainder above what earlier probes kept (was 0.05x)."""
    pool = WarmPool()
    fresh = SubprocessRunner(timeout_s=300)
    req = request(tmp_path).model_copy(update={"measure": MeasureConfig(min_time_s=0.05)})
    try:
        run = WarmRunner(fresh, pool)
        results = [run.run(req) for _ in range(3)]
    finally:
        pool.close_all()
    baseline = fresh.run(req)
    assert [r.status for r in [*results, baseline]] == ["ok"] * 4, [r.reason for r in results]
    ms = [r.measurement for r in results]
    assert all(m and m.memory and m.timing for m in ms)
    assert ms[2] and ms[2].runtime["process"] == "warm (probe 3)" and pool.started == 1
    assert baseline.measurement and baseline.measurement.memory
    fresh_peak = baseline.measurement.memory.peak_rss_bytes
    peaks = [m.memory.peak_rss_bytes for m in ms if m and m.memory]
    assert all(0.6 * fresh_peak < p < 1.6 * fresh_peak for p in peaks), (peaks, fresh_peak)


def test_real_torch_worker_counts_the_compiler_it_imported_ahead(tmp_path: Path) -> None:
    """torch.compile's modules, imported once in the worker before the fork, still
    count in every compile probe's peak, as a fresh process's own import does (without
    the credit a warm peak read about 115 MiB less than a fresh one)."""
    pool = WarmPool()
    fresh = SubprocessRunner(timeout_s=300)
    fast = {"measure": MeasureConfig(min_time_s=0.05)}
    req = request(tmp_path, mode="compile").model_copy(update=fast)
    eager = request(tmp_path).model_copy(update=fast)
    try:
        warm = [WarmRunner(fresh, pool).run(r) for r in (req, req, eager)]
        imported = pool.live()[0].compiler_bytes or 0
    finally:
        pool.close_all()
    cold, cold_eager = fresh.run(req), fresh.run(eager)
    # an eager probe in that worker reports a fresh process's baseline, not one 115 MiB up
    base = [
        r.measurement.memory.baseline_rss_bytes
        for r in (warm[2], cold_eager)
        if r.measurement and r.measurement.memory
    ]
    assert len(base) == 2 and abs(base[0] - base[1]) < 48 * 2**20, base
    warm = warm[:2]
    assert [r.status for r in [*warm, cold]] == ["ok"] * 3, [r.reason for r in warm]
    assert pool.started == 1 and imported > 32 * 2**20
    ms = [r.measurement for r in warm]
    assert all(m and "compiler_import" in m.runtime for m in ms)
    assert cold.measurement and cold.measurement.memory
    fresh_peak = cold.measurement.memory.peak_rss_bytes
    peaks = [m.memory.peak_rss_bytes for m in ms if m and m.memory]
    assert all(0.8 * fresh_peak < p < 1.25 * fresh_peak for p in peaks), (peaks, fresh_peak)


def test_one_real_worker_per_framework_runs_every_thread_count(tmp_path: Path) -> None:
    """Thread counts do not key the workers: each forked child sets its own before its
    first op (the framework reads it back; that the pools then run on that many cores
    was checked by hand, `probes/settings.py`)."""
    pool = WarmPool()
    fast = {"measure": MeasureConfig(min_time_s=0.05)}
    asked = [
        (request(tmp_path, intra_threads=1), "1"),
        (request(tmp_path, intra_threads=2), "2"),
        (tf_request(tmp_path, intra_threads=1), "1"),
        (tf_request(tmp_path, intra_threads=2, inter_threads=1), "2"),
    ]
    try:
        run = WarmRunner(SubprocessRunner(timeout_s=300), pool)
        got = [run.run(r.model_copy(update=fast)) for r, _ in asked]
    finally:
        pool.close_all()
    assert [r.status for r in got] == ["ok"] * 4, [r.reason for r in got]
    threads = [r.measurement.runtime["intra_threads"] for r in got if r.measurement]
    assert threads == [t for _, t in asked] and pool.started == 2


def test_real_worker_over_its_limit_is_oom_and_replaced(tmp_path: Path) -> None:
    """The forked child counts every page it shares with the worker, as a fresh process
    counts its import: a limit that the worker (about 240 MiB) passes but the import plus
    a 200000-row batch does not trips, and the next probe gets a new worker."""
    pool = WarmPool()
    big = {"workload": InferWorkload(batch=200_000), "limits": ProbeLimits(memory_mb=450)}
    try:
        run = WarmRunner(SubprocessRunner(timeout_s=300), pool)
        r = run.run(request(tmp_path).model_copy(update=big))
        assert r.status == "oom" and "exceeded the 450 MiB limit" in (r.reason or ""), r.reason
        assert pool.started == 1 and r.measurement is None
        assert run.run(request(tmp_path)).status == "ok" and pool.started == 2
    finally:
        pool.close_all()


def test_peak_rss_mark_resets_per_probe() -> None:
    hoard = bytearray(64 * 2**20)
    hoard[:: 2**12] = b"x" * len(hoard[:: 2**12])  # touch every page
    high = peak_rss_bytes()
    del hoard
    gc.collect()
    assert reset_peak_rss()
    assert peak_rss_bytes() < high - 32 * 2**20


def test_fresh_processes_option_and_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Warm workers are the default; fresh processes are a flag or a setting away."""
    args = parser().parse_args(["recommend", "lenet5", "--fresh-processes"])
    assert args.fresh_processes is True
    assert parser().parse_args(["tune", "lenet5"]).fresh_processes is False
    monkeypatch.setenv("FWADVISOR_DATA_DIR", str(tmp_path))
    assert isinstance(Gatherer(Settings(), "measure").prober().runner, WarmRunner)
    monkeypatch.setenv("FWADVISOR_FRESH_PROCESSES", "1")
    assert isinstance(Gatherer(Settings(), "measure").prober().runner, SubprocessRunner)
