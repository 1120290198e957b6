"""Keys for per-process caches of parsed data files.

Parsing the YAML data files (questionnaire, capability matrix, ecosystem priors) took
about 100 ms per recommendation, which a web process answering many requests cannot
afford. The loaders cache the parsed object under ``file_key(path)``: an edited file
gets a new key, so it is parsed again, and the old entry ages out of the LRU cache.

Cached objects are shared between callers. Their models are frozen and hold tuples,
not lists, so most mutation fails loudly; the dicts they hold are read-only by
convention (``tests/test_recommender.py`` checks a recommendation leaves them as they
were).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml

T = TypeVar("T")
#: Parses a file's YAML document; ``source`` (the path) is for its error messages.
Parse = Callable[[Any, str], T]


def file_key(path: Path) -> tuple[Path, int, int]:
    """(resolved path, modification time in ns, size): changes when the file does.

    The size is there because two writes within one mtime tick (a few ms on some
    filesystems) would otherwise share a key. Raises OSError when the file is missing.
    """
    resolved = path.resolve()
    st = resolved.stat()
    return resolved, st.st_mtime_ns, st.st_size


def load_yaml(path: Path, parse: Parse[T]) -> T:
    """``parse`` of the YAML in ``path``, once per file version and parser (the one
    cached loader of the data files). Raises OSError for a missing file and
    yaml.YAMLError for a malformed one; ``parse`` raises its own errors."""
    return cast(T, _load(*file_key(path), parse))


@lru_cache(maxsize=32)
def _load(path: Path, mtime_ns: int, size: int, parse: Parse[Any]) -> Any:
    del mtime_ns, size  # part of the cache key only
    return parse(yaml.safe_load(path.read_text()), str(path))
