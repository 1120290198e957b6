"""Run one export artifact in a process that holds nothing but its runtime.

``python -m probes.worker.artifact REQUEST.json`` loads the artifact named in the request
with ``probes.frameworks.artifacts.load_artifact``, runs it once on the inputs in an
``.npz`` file and writes the outputs to another. It imports no builder, no spec and no
custom-op registration, so it sees what a deployment sees: an opaque kernel that was
defined in Python by the exporting process is simply not there.

The export worker calls ``run_standalone`` for models with opaque custom kernels. The
child is in the worker's process group, so the runner's timeout and memory cap cover it.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from probes.errors import brief


class ArtifactRun(BaseModel):
    framework: str
    target: str
    path: str
    inputs: str  # .npz, arrays in call order (arr_0, arr_1, ...)
    names: list[str]
    threads: int
    out: str  # .npz written with the outputs in order


def run_standalone(
    framework: str,
    target: str,
    artifact: Path,
    arrays: list[np.ndarray],
    names: list[str],
    threads: int,
    work_dir: Path,
    timeout_s: float = 300.0,
) -> list[np.ndarray] | str:
    """The artifact's outputs from a fresh process, or why it did not run there."""
    inputs, out = work_dir / "standalone_inputs.npz", work_dir / "standalone_outputs.npz"
    np.savez(inputs, *arrays)
    req = ArtifactRun(
        framework=framework,
        target=target,
        path=str(artifact),
        inputs=str(inputs),
        names=names,
        threads=threads,
        out=str(out),
    )
    req_path = work_dir / "standalone.json"
    req_path.write_text(req.model_dump_json())
    try:
        done = subprocess.run(
            [sys.executable, "-m", "probes.worker.artifact", str(req_path)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        return f"did not finish within {timeout_s:g} s"
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit status {done.returncode}"
    with np.load(out) as z:
        return [z[f"arr_{i}"] for i in range(len(z.files))]


class _LoggedErrors(logging.Handler):
    """Exceptions a runtime logged before raising a generic error of its own:
    torch.export.load logs "We failed to resolve torch.ops.fwadvisor... to an operator",
    then raises "We ran into an error when deserializing the saved file"."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[BaseException] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.errors.append(record.exc_info[1])


def _root(e: BaseException) -> BaseException:
    while (nxt := e.__cause__ or e.__context__) is not None:
        e = nxt
    return e


def _why(e: BaseException, logged: list[BaseException]) -> str:
    """The error, and the root cause of it (or of the last error the runtime logged)."""
    root = _root(logged[-1] if logged and _root(e) is e else e)
    return brief(e, 200) + (f" (cause: {brief(root, 400)})" if root is not e else "")


def main(argv: list[str]) -> int:
    req = ArtifactRun.model_validate_json(Path(argv[0]).read_text())
    with np.load(req.inputs) as z:
        arrays = [z[f"arr_{i}"] for i in range(len(z.files))]
    logged = _LoggedErrors()
    logging.getLogger().addHandler(logged)
    try:
        from probes.frameworks.artifacts import load_artifact, prepare_runtime

        prepare_runtime(req.framework, req.threads)
        for logger in logging.root.manager.loggerDict.values():  # torch's do not propagate
            if isinstance(logger, logging.Logger) and not logger.propagate:
                logger.addHandler(logged)
        run, _ = load_artifact(
            req.framework, req.target, Path(req.path), arrays, req.names, req.threads
        )
        outputs = run()
    except Exception as e:  # the reason is the result: one line for the parent
        print(_why(e, logged.errors).replace("\n", " "), file=sys.stderr)
        return 1
    np.savez(req.out, *outputs)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
