"""Reading a Keras 3 ``.keras`` archive as data: a zip of config.json and model.weights.h5.

Never ``keras.models.load_model``: its safe_mode has been bypassed repeatedly
(CVE-2025-1550, CVE-2025-8747, CVE-2025-9906). The zip is read in memory with bounds on
entry count, sizes and compression ratio (zip bombs); the weights are HDF5 datasets read
with h5py, which parses data and runs nothing.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from probes.errors import ImportRefusedError

MAX_ENTRIES = 64
MAX_CONFIG_BYTES = 32 * 2**20
MAX_WEIGHTS_BYTES = 2**31
MAX_ELEMENTS = 2**31
MAX_RATIO = 200  # uncompressed / compressed; HDF5 weights compress ~1x, JSON ~10x


@dataclass
class KerasArchive:
    config: dict[str, Any]
    weights: dict[str, list[np.ndarray]]  # h5 group path (layers/conv2d) -> its vars in order


def _read(z: zipfile.ZipFile, name: str, limit: int) -> bytes:
    info = z.getinfo(name)
    if info.file_size > limit:
        raise ImportRefusedError(f"{name}: {info.file_size:,} bytes is over the {limit:,} limit")
    if info.compress_size and info.file_size / info.compress_size > MAX_RATIO:
        raise ImportRefusedError(
            f"{name}: compression ratio {info.file_size / info.compress_size:,.0f}:1 "
            "looks like a zip bomb"
        )
    with z.open(info) as f:
        data = f.read(limit + 1)  # the declared size may lie: never read past the limit
    if len(data) > limit:
        raise ImportRefusedError(f"{name}: inflates past the {limit:,}-byte limit (a zip bomb?)")
    return data


def _vars(h5: h5py.File) -> dict[str, list[np.ndarray]]:
    out: dict[str, list[np.ndarray]] = {}
    total = [0]

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Group) and (name.endswith("/vars") or name == "vars"):
            keys = sorted(obj.keys(), key=lambda k: int(k) if k.isdigit() else 1 << 30)
            arrays = []
            for k in keys:
                ds = obj[k]
                if not isinstance(ds, h5py.Dataset) or ds.dtype.kind not in "fiub":
                    raise ImportRefusedError(f"weights entry '{name}/{k}' is not a numeric array")
                total[0] += int(ds.size) * ds.dtype.itemsize  # HDF5 filters can inflate too
                if ds.size > MAX_ELEMENTS or total[0] > MAX_WEIGHTS_BYTES:
                    raise ImportRefusedError(
                        f"weights entry '{name}/{k}' declares {list(ds.shape)}: too large"
                    )
                arrays.append(np.asarray(ds[()]))
            out[name.removesuffix("/vars").removesuffix("vars")] = arrays

    h5.visititems(visit)
    return out


def read_keras(path: Path) -> KerasArchive:
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise ImportRefusedError(f"{path.name}: not a .keras archive (not a zip file)") from None
    with z:
        names = z.namelist()
        if len(names) > MAX_ENTRIES:
            raise ImportRefusedError(f"{path.name}: {len(names)} entries; a .keras has a few")
        if "config.json" not in names:
            raise ImportRefusedError(f"{path.name}: no config.json (is it a Keras 3 archive?)")
        try:
            config = json.loads(_read(z, "config.json", MAX_CONFIG_BYTES))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            raise ImportRefusedError(f"{path.name}: config.json is not valid JSON") from None
        weights: dict[str, list[np.ndarray]] = {}
        if "model.weights.h5" in names:
            blob = _read(z, "model.weights.h5", MAX_WEIGHTS_BYTES)
            try:
                with h5py.File(io.BytesIO(blob), "r") as h5:
                    weights = _vars(h5)
            except OSError as e:
                raise ImportRefusedError(f"{path.name}: unreadable weights file ({e})") from None
    if not isinstance(config, dict):
        raise ImportRefusedError(f"{path.name}: config.json is not an object")
    return KerasArchive(config, weights)
