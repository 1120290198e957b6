"""Text with web addresses in it, made into HTML with those addresses as links.

Only ``http://`` and ``https://`` addresses become links; everything else (a
``javascript:`` or ``data:`` URL included) stays escaped text. Trailing punctuation
("see https://x.org/a).") is left out of the link.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

URL = re.compile(r"https?://[^\s<>\"'`]+", re.IGNORECASE)
TRAILING = ".,;:!?)]}"


def _split(url: str) -> tuple[str, str]:
    tail = ""
    while url and url[-1] in TRAILING:
        if url[-1] == ")" and url.count("(") >= url.count(")"):
            break  # a balanced parenthesis belongs to the address (Wikipedia style)
        url, tail = url[:-1], url[-1] + tail
    return url, tail


def linkify(text: object) -> Markup:
    """``text`` escaped, with each http(s) address an ``<a>`` (rel noopener)."""
    s = str(text)
    out: list[str] = []
    pos = 0
    for m in URL.finditer(s):
        url, tail = _split(m.group(0))
        out.append(str(escape(s[pos : m.start()])))
        if url.lower() in ("http://", "https://"):
            out.append(str(escape(url)))
        else:
            href = escape(url)
            out.append(f'<a href="{href}" rel="noopener noreferrer">{href}</a>')
        out.append(str(escape(tail)))
        pos = m.end()
    out.append(str(escape(s[pos:])))
    return Markup("".join(out))
