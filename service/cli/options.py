"""Option types shared by the CLI's commands."""

from __future__ import annotations

import argparse

from probes.errors import AdvisorError
from probes.frameworks.facts import BOTH, expand


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
