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

from pathlib import Path


def file_key(path: Path) -> tuple[Path, int, int]:
    """(resolved path, modification time in ns, size): changes when the file does.

    The size is there because two writes within one mtime tick (a few ms on some
    filesystems) would otherwise share a key. Raises OSError when the file is missing.
    """
    resolved = path.resolve()
    st = resolved.stat()
    return resolved, st.st_mtime_ns, st.st_size
