"""Where the compiled predictor lives, and how it gets there without scikit-learn.

``load_compiled(settings)`` returns the ``CompiledPredictor`` stored at
``settings.data_dir / "predictor" / <key>.json``. The key hashes everything the fit
depends on: the training-set CSV's bytes, the environment key whose rows the fit
chooses, the compiled format, the feature list, the source of the fitting code and the
versions of scikit-learn, scipy and numpy. A change to any of them is a new file name,
so a stale file is never read (old files stay; they are small).

A missing file is built by ``python -m recommender.predictor.export`` in a child process,
so the caller never imports scikit-learn or scipy. A file lock beside the output lets
one of several processes starting at once (web workers) build while the others wait
and then read its file; the builder writes atomically, so a reader never sees half a
file. Loaded predictors stay in memory, keyed by path, modification time and size.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from probes.config import PACKAGE_ROOT, Settings
from probes.errors import AdvisorError
from probes.measure.environment import environment
from recommender.knowledge.yaml_cache import file_key
from recommender.predictor.compiled import FORMAT_VERSION, CompiledPredictor
from recommender.predictor.dataset import DEFAULT_DATASET
from recommender.predictor.features import FEATURES

BUILD_TIMEOUT_S = 120.0  # the fit takes about 5 s on 2 cores
# The code a compiled model is fitted by: editing any of it invalidates the cache.
FIT_SOURCES = tuple(
    PACKAGE_ROOT / "recommender" / "predictor" / f"{m}.py"
    for m in ("cost", "dataset", "evaluation", "features", "estimator", "instant", "export")
)
FIT_PACKAGES = ("scikit-learn", "scipy", "numpy")


class PredictorBuildError(AdvisorError):
    code = "predictor_build_failed"


def cache_key(dataset: Path, env_key: str) -> str:
    """The compiled model's file name (without ``.json``) for this dataset and machine."""
    return _cache_key(*file_key(dataset), env_key)


@lru_cache(maxsize=8)
def _cache_key(dataset: Path, mtime_ns: int, size: int, env_key: str) -> str:
    del mtime_ns, size  # part of the cache key only: the content is what is hashed
    h = hashlib.sha256()
    for part in (f"format {FORMAT_VERSION}", f"env {env_key}", ",".join(FEATURES)):
        h.update(part.encode() + b"\0")
    for name in FIT_PACKAGES:
        h.update(f"{name} {_version(name)}".encode() + b"\0")
    for path in (dataset, *FIT_SOURCES):
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:20]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "absent"


def compiled_path(settings: Settings, dataset: Path = DEFAULT_DATASET) -> Path:
    """Where the compiled predictor for ``dataset`` on this machine is (or will be)."""
    key = cache_key(dataset, environment().key())
    return settings.data_dir / "predictor" / f"{key}.json"


def load_compiled(
    settings: Settings | None = None, dataset: Path = DEFAULT_DATASET
) -> CompiledPredictor:
    """The compiled predictor for ``dataset`` on this machine, built first if missing.

    Shared between callers: read it, never change it. Raises ``PredictorBuildError``
    when the build fails.
    """
    path = compiled_path(settings or Settings(), dataset)
    try:
        return _read(*file_key(path))
    except FileNotFoundError:
        pass
    except ValueError:  # unreadable (pydantic's ValidationError is one): build it again
        path.unlink(missing_ok=True)
    build(path, dataset)
    return _read(*file_key(path))


@lru_cache(maxsize=8)
def _read(path: Path, mtime_ns: int, size: int) -> CompiledPredictor:
    del mtime_ns, size  # part of the cache key only
    return CompiledPredictor.from_file(path)


def build(out: Path, dataset: Path = DEFAULT_DATASET) -> None:
    """Fit and compile into ``out`` in a child process, unless another process has done
    it while this one waited for the lock."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with _locked(out.with_suffix(".lock")):
        if out.exists():
            return
        cmd = [sys.executable, "-m", "recommender.predictor.export", "--out", str(out)]
        cmd += ["--dataset", str(dataset), "--env-key", environment().key()]
        env = {**os.environ, "PYTHONPATH": _pythonpath()}
        try:
            done = subprocess.run(
                cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S, env=env
            )
        except subprocess.TimeoutExpired:
            raise PredictorBuildError(
                f"building the compiled predictor ({out}) took over {BUILD_TIMEOUT_S:.0f} s"
            ) from None
        if done.returncode != 0 or not out.exists():
            why = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise PredictorBuildError(
                f"building the compiled predictor ({out}) failed with exit status "
                f"{done.returncode}: {why}"
            )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path``, held until the block ends (released by the OS if
    the process dies)."""
    with path.open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _pythonpath() -> str:
    """This checkout first, so that the child runs this code even when the package is
    not installed."""
    return os.pathsep.join(p for p in (str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")) if p)
