"""One error hierarchy, each class with a stable machine-readable ``code``."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class AdvisorError(Exception):
    """Root of every error framework-advisor raises on purpose."""

    code = "advisor_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message}


class SpecError(AdvisorError):
    """A model spec is invalid. ``node`` names the offending node when there is one."""

    code = "spec_invalid"

    def __init__(self, message: str, *, node: str | None = None, path: str | None = None) -> None:
        prefix = f"node '{node}': " if node is not None else ""
        super().__init__(prefix + message)
        self.node = node
        self.path = path

    def with_source(self, source: str) -> SpecError:
        """Prefix the message with where the spec came from (a file path or zoo name)."""
        self.message = f"{source}: {self.message}"
        self.args = (self.message,)
        return self

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out.update({"node": self.node, "path": self.path})
        return out


class UnknownOpError(SpecError):
    code = "unknown_op"


class ParamError(SpecError):
    code = "bad_param"


class ArityError(SpecError):
    code = "wrong_input_count"


class UnknownInputError(SpecError):
    code = "unknown_input"


class CycleError(SpecError):
    code = "cycle"


class UnreachableNodeError(SpecError):
    code = "unreachable_node"


class ShapeMismatchError(SpecError):
    code = "shape_mismatch"


class NonPositiveDimError(SpecError):
    code = "non_positive_dim"


class LimitExceededError(SpecError):
    code = "limit_exceeded"


class ExpressionError(SpecError, ValueError):
    """A ``custom`` op expression is rejected (syntax, whitelist, limits, shapes).

    Also a ``ValueError``, so a pydantic validator that raises it reports it as a value
    error; ``build_graph`` then re-raises it with the node id and the field path.
    """

    code = "bad_expression"


class SpecFileError(AdvisorError):
    """A spec file cannot be read or parsed."""

    code = "spec_file"


class UnknownModelError(AdvisorError):
    code = "unknown_model"


class ProbeError(AdvisorError):
    """A probe could not produce the result the caller needs."""

    code = "probe_failed"


class UnsupportedError(AdvisorError):
    """This framework/device/settings combination cannot run here (not a failure)."""

    code = "unsupported"


class NotDifferentiableError(UnsupportedError):
    """Training needs a gradient that an opaque ``custom`` op does not declare."""

    code = "not_differentiable"


class InvalidSettingsError(AdvisorError):
    """Settings rejected before any process starts."""

    code = "invalid_settings"


def brief(e: BaseException, limit: int = 300) -> str:
    """One line for a report: an AdvisorError's message, else ``Type: first line``."""
    text = e.message if isinstance(e, AdvisorError) else f"{type(e).__name__}: {e}"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return (lines[0] if lines else type(e).__name__)[:limit]


class ImportRefusedError(AdvisorError):
    """A model file is refused before or while reading it: hostile, malformed or too big."""

    code = "import_refused"


class UnsupportedOpsError(AdvisorError):
    """The model uses ops the importer cannot convert; ``nodes`` lists ``(op, node)`` pairs."""

    code = "unsupported_ops"

    def __init__(self, nodes: list[tuple[str, str, str]]) -> None:
        self.nodes = nodes
        shown = ", ".join(
            f"{op} (node {name}{': ' + why if why else ''})" for op, name, why in nodes[:8]
        )
        more = f", and {len(nodes) - 8} more" if len(nodes) > 8 else ""
        n = len(nodes)
        super().__init__(
            f"{n} node{'s' if n != 1 else ''} use{'s' if n == 1 else ''} ops we don't "
            f"support: {shown}{more}"
        )

    def to_dict(self) -> dict[str, object]:
        out = super().to_dict()
        out["unsupported"] = [{"op": op, "node": name, "why": why} for op, name, why in self.nodes]
        return out


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'small'?"`` for a near miss among ``choices``, else ``""``."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
