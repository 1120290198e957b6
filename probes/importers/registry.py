"""Converters and constant folders, one per ONNX op type, registered by decorator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from probes.importers.context import Ctx, Value

#: ``convert(ctx, attrs, inputs, name) -> outputs`` for ops on activations.
Converter = Callable[[Ctx, dict[str, Any], list[Value | None], str], list[Value]]
#: ``fold(attrs, inputs) -> outputs`` for ops whose inputs are all constants.
Folder = Callable[[dict[str, Any], list[np.ndarray | None]], list[np.ndarray]]

CONVERTERS: dict[str, Converter] = {}
FOLDERS: dict[str, Folder] = {}


def converter(*op_types: str) -> Callable[[Converter], Converter]:
    def register(fn: Converter) -> Converter:
        for op in op_types:
            CONVERTERS[op] = fn
        return fn

    return register


def folder(*op_types: str) -> Callable[[Folder], Folder]:
    def register(fn: Folder) -> Folder:
        for op in op_types:
            FOLDERS[op] = fn
        return fn

    return register


def known(op_type: str) -> bool:
    return op_type in CONVERTERS or op_type in FOLDERS
