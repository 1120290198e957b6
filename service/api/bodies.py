"""The request body at the boundary: read (with the size limit, streamed or not),
decoded as strict JSON, and checked for text that cannot be stored or sent back (a lone
UTF-16 surrogate) before any model sees it.

Everything a later layer stores or prints comes through here, so a stored row always
holds text that encodes as UTF-8 (the read side is defensive too: ``service.api.jobs``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import current_app, request

from service.api.problems import ApiProblem, FieldError

#: JSON escapes in the UTF-16 surrogate range; a lone one decodes to an unencodable str
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
MAX_INT_DIGITS = 1000  # far beyond any real field; Python's own limit is 4300


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON (RFC 8259 has no NaN or Infinity)")


def _int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {digits} digits is too large (at most {MAX_INT_DIGITS})")
    return int(text)


def read_body() -> bytes:
    """The raw body, 413 past the limit, with or without Content-Length.

    Werkzeug stops a chunked body at the limit without saying so (the JSON then looked
    truncated: a 400); a streamed body that fills the limit is treated as over it."""
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH (Content-Length)
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    if request.content_length is None and limit is not None and len(raw) >= limit:
        raise ApiProblem("body_too_large", f"the body exceeds {limit} bytes")
    return raw


def unencodable(obj: Any, path: str = "body") -> str | None:
    """The path of the first key or string in ``obj`` that is not valid Unicode text
    (it holds a lone surrogate), else None. Iterative: depth is bounded by the JSON
    parser, not by this walk."""
    stack: list[tuple[Any, str]] = [(obj, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, str):
            if not _encodes(node):
                return where
        elif isinstance(node, dict):
            for k, v in node.items():
                if not _encodes(k):
                    return f"{where} (a key)"
                stack.append((v, f"{where}.{k}"))
        elif isinstance(node, list):
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(node))
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_json(raw: bytes) -> Any:
    """Strict JSON (no NaN, no huge integers, no lone surrogates), or a 4xx problem."""
    try:
        obj = json.loads(raw, parse_constant=_no_constant, parse_int=_int)
    except RecursionError:
        raise ApiProblem("malformed_json", "the JSON is nested too deeply") from None
    except ValueError as e:  # JSONDecodeError, bad UTF-8, a too-long integer
        raise ApiProblem("malformed_json", str(e)) from None
    if _SURROGATE_ESCAPE.search(raw):  # only then can a decoded string hold one
        where = unencodable(obj)
        if where is not None:
            msg = "not valid Unicode text: it holds a lone UTF-16 surrogate (\\ud800-\\udfff)"
            raise ApiProblem(
                "validation_failed",
                f"{where}: {msg}",
                errors=[FieldError(path=where, message=msg, code="invalid_text")],
            )
    return obj
