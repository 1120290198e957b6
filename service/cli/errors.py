"""The CLI's one error path: whatever goes wrong (a bad option, a bad file, a damaged
store, a bug) is one line on stderr and exit code 2; under ``--json`` that line is a
JSON object. Output piped into a reader that stops early (``| head``) ends quietly.

Set ``FWADVISOR_DEBUG=1`` to get the traceback of an unexpected error.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
from collections.abc import Callable
from typing import Any, NoReturn

from pydantic import ValidationError

from probes.errors import AdvisorError, brief

EXIT_ERROR, EXIT_INTERRUPTED, EXIT_PIPE = 2, 130, 141  # 141: as when killed by SIGPIPE


class UsageError(Exception):
    """A command line argparse refused (unknown option, bad value, missing argument)."""


class HelpFormatter(argparse.HelpFormatter):
    """Help as plain text: no reStructuredText backticks, and every option's default
    shown where it has one (None and False say nothing a user can act on)."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(text.replace("``", ""))

    def _get_help_string(self, action: argparse.Action) -> str:
        text = (action.help or "").replace("``", "")
        default = action.default
        quiet = default in (None, False, argparse.SUPPRESS) or default == []
        if quiet or not action.option_strings or "default" in text:
            return text
        return f"{text} (default: %(default)s)".strip()


class Parser(argparse.ArgumentParser):
    """argparse, but its errors come to ``run`` instead of printing usage and exiting
    (its subparsers are of this class too), and its help is plain text with defaults."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _validation(e: ValidationError) -> str:
    parts = []
    for err in e.errors(include_url=False)[:3]:
        where = ".".join(str(x) for x in err["loc"])
        option = f"--{where.replace('_', '-')}" if where else "a value"
        parts.append(f"{option}: {err['msg']}")
    return "; ".join(parts)


def describe(e: BaseException) -> tuple[str, str]:
    """(code, one-line message) for any exception."""
    if isinstance(e, UsageError):
        return "usage", str(e)
    if isinstance(e, AdvisorError):
        return e.code, e.message
    if isinstance(e, ValidationError):
        return "bad_value", _validation(e)
    if isinstance(e, sqlite3.DatabaseError):
        return "store_damaged", f"a database file is damaged or not a database: {e}"
    if isinstance(e, OSError):
        return "os_error", brief(e)
    return "internal", f"internal error: {brief(e)} (FWADVISOR_DEBUG=1 shows the traceback)"


def report(e: BaseException, as_json: bool) -> int:
    code, message = describe(e)
    message = " ".join(message.split())  # one line
    if as_json:
        line = json.dumps({"error": {"code": code, "message": message}})
    else:
        line = f"error: {message}"
    print(line, file=sys.stderr)
    return EXIT_ERROR


def _quiet_pipe() -> int:
    """stdout's reader went away: send what is left nowhere, say nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_PIPE


def run(body: Callable[[], int], as_json: bool) -> int:
    """``body()``'s exit code, or the one error line and 2 for anything it raises."""
    try:
        code = body()
        sys.stdout.flush()  # a closed pipe shows up here, inside the handler
        return code
    except BrokenPipeError:
        return _quiet_pipe()
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as e:
        if os.environ.get("FWADVISOR_DEBUG"):
            raise
        return report(e, as_json)
