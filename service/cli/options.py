"""Option types shared by the CLI's commands."""

from __future__ import annotations

import argparse
import math

from probes.errors import AdvisorError
from probes.frameworks.facts import BOTH, expand

MODEL_HELP = (
    "a zoo model (fwadvisor models list), a spec YAML file, or a model brought in with "
    "fwadvisor import"
)


def framework_option(text: str) -> str:
    """``--framework``: a framework, an alias (pytorch, pt, tf, keras) or ``both``."""
    try:
        fws = expand(text)
    except AdvisorError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return fws[0] if len(fws) == 1 else BOTH


def add_framework_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--framework",
        type=framework_option,
        default=BOTH,
        metavar="{torch,tensorflow,both}",
        help="one framework (aliases: pytorch, pt, tf, keras) or both (default: both)",
    )


def add_process_option(p: argparse.ArgumentParser) -> None:
    """``--fresh-processes``: every probe in its own new process, no warm workers."""
    p.add_argument(
        "--fresh-processes",
        action="store_true",
        help="run every probe in a new process instead of a child of a warm worker (also "
        "FWADVISOR_FRESH_PROCESSES=1); slower, measures the same (docs/benchmarks.md)",
    )


def _number(kind: type[int] | type[float], text: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, found {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, found {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, found {text}")
    return value


def positive_int(text: str) -> int:
    """An option that counts or sizes something: an integer > 0."""
    return int(_number(int, text))


def positive_float(text: str) -> float:
    """An option that is a time or a limit: a finite number > 0."""
    return float(_number(float, text))


def positive_ints(text: str) -> list[int]:
    """A comma list of integers > 0 (``--batch 1,8,32``)."""
    return [positive_int(x.strip()) for x in text.split(",")]
