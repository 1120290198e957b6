"""Reading an ONNX file as data: protobuf only, external data resolved inside its folder.

Nothing here runs the model. External data must be a plain relative path to a regular
file (no absolute paths, no ``..``, no symlinks) inside the model's own folder, and
every (offset, length) must lie within that file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import onnx
from onnx import TensorProto
from onnx.external_data_helper import ExternalDataInfo

from probes.errors import ImportRefusedError

STANDARD_DOMAINS = ("", "ai.onnx")
MIN_OPSET, MAX_OPSET = 13, 23
MAX_FILE_BYTES = 2**31 - 1  # protobuf's own ceiling for one message
MAX_ELEMENTS = 2**31  # any single tensor (weights or declared activations)


def _all_tensors(graph: onnx.GraphProto) -> Iterator[TensorProto]:
    yield from graph.initializer
    for node in graph.node:
        for attr in node.attribute:
            if attr.HasField("t"):
                yield attr.t
            yield from attr.tensors
            if attr.HasField("g"):
                yield from _all_tensors(attr.g)
            for g in attr.graphs:
                yield from _all_tensors(g)


def _check_location(base: Path, location: str, tensor: str) -> Path:
    rel = PurePosixPath(location.replace("\\", "/"))
    if not location or rel.is_absolute() or ".." in rel.parts or ":" in location:
        raise ImportRefusedError(
            f"tensor '{tensor}': external data location '{location}' must be a relative path "
            "inside the model's folder (no absolute path, no '..')"
        )
    path = base.joinpath(*rel.parts)
    cur = base
    for part in rel.parts:
        cur = cur / part
        if cur.is_symlink():
            raise ImportRefusedError(
                f"tensor '{tensor}': external data '{location}' is a symlink; copy the file instead"
            )
    try:
        st = path.stat()
    except OSError:
        raise ImportRefusedError(
            f"tensor '{tensor}': external data file '{location}' not found beside the model"
        ) from None
    if not stat.S_ISREG(st.st_mode):
        raise ImportRefusedError(f"tensor '{tensor}': external data '{location}' is not a file")
    return path


def _load_external(tensor: TensorProto, base: Path) -> None:
    info = ExternalDataInfo(tensor)
    path = _check_location(base, info.location, tensor.name)
    size = path.stat().st_size
    offset = int(info.offset or 0)
    length = int(info.length) if info.length else size - offset
    if offset < 0 or length < 0 or offset + length > size:
        raise ImportRefusedError(
            f"tensor '{tensor.name}': external data range [{offset}, {offset + length}) "
            f"lies outside '{info.location}' ({size} bytes)"
        )
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f:
        f.seek(offset)
        tensor.raw_data = f.read(length)
    del tensor.external_data[:]
    tensor.data_location = TensorProto.DEFAULT


def _check_dims(tensor: TensorProto) -> None:
    n = 1
    for d in tensor.dims:
        if d < 0:
            raise ImportRefusedError(f"tensor '{tensor.name}' has a negative dimension {d}")
        n *= d
        if n > MAX_ELEMENTS:
            raise ImportRefusedError(
                f"tensor '{tensor.name}' declares {list(tensor.dims)}: more than "
                f"{MAX_ELEMENTS:,} elements"
            )


def check_opsets(model: onnx.ModelProto) -> int:
    """The default-domain opset; custom domains and local functions are refused."""
    version = None
    for imp in model.opset_import:
        if imp.domain in STANDARD_DOMAINS:
            version = imp.version
    if version is None:
        raise ImportRefusedError("the model imports no standard ONNX opset")
    if not MIN_OPSET <= version <= MAX_OPSET:
        raise ImportRefusedError(
            f"opset {version} is not supported (opsets {MIN_OPSET} to {MAX_OPSET}); "
            "re-export with opset_version=17 or later"
        )
    for fn in model.functions:
        raise ImportRefusedError(
            f"the model defines its own function '{fn.domain}.{fn.name}'; custom functions "
            "are not imported (export with inlined functions)"
        )
    return int(version)


def load_onnx(path: Path) -> onnx.ModelProto:
    """Parse ``path`` (protobuf data only) and pull its external weights in, safely."""
    path = Path(path)
    if path.is_symlink():
        raise ImportRefusedError(f"{path.name}: the model file is a symlink")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise ImportRefusedError(f"{path.name}: {size:,} bytes is over the 2 GiB ONNX limit")
    try:
        # protobuf data only: the external tensors are resolved below, by our own rules
        model: onnx.ModelProto = onnx.ModelProto.FromString(path.read_bytes())
    except Exception as e:  # protobuf DecodeError and friends: the file is not ONNX
        raise ImportRefusedError(
            f"{path.name}: not a valid ONNX file ({type(e).__name__})"
        ) from None
    check_opsets(model)
    base = path.resolve().parent
    for tensor in _all_tensors(model.graph):
        _check_dims(tensor)
        if tensor.data_location == TensorProto.EXTERNAL:
            _load_external(tensor, base)
    return model
