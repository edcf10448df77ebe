"""A fast reader of the GGUF header: the architecture and where each tensor's bytes lie.

``gguf.GGUFReader`` turns every metadata value into numpy arrays, the ~50,000 tokenizer strings
included, which takes about two seconds for SmolLM2; the pipeline needs only
``general.architecture``, ``general.alignment`` and the tensor table. This reader skips the rest
(GGUF versions 2 and 3, little-endian) and checks that no tensor runs past the end of the file.
Dequantisation stays with ``gguf.quants``.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from distchar.errors import DistcharError

# GGUF metadata value types -> struct format of a scalar (8: string, 9: array)
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_PLAIN_DTYPES = {"F16": np.float16, "F32": np.float32, "F64": np.float64, "I8": np.int8, "I16": np.int16,
                 "I32": np.int32, "I64": np.int64}  # fmt: skip


class _Cursor:
    def __init__(self, data: bytes, path: Path):
        self.data, self.pos, self.path = data, 0, path

    def take(self, fmt: str):
        size = struct.calcsize("<" + fmt)
        if self.pos + size > len(self.data):
            raise DistcharError(f"GGUF file {self.path} is truncated inside its header.")
        value = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return value[0] if len(value) == 1 else value

    def string(self) -> str:
        length = self.take("Q")
        if self.pos + length > len(self.data):
            raise DistcharError(f"GGUF file {self.path} is truncated inside its header.")
        text = self.data[self.pos : self.pos + length].decode("utf-8", errors="replace")
        self.pos += length
        return text

    def value(self, kind: int):
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            item, count = self.take("I"), self.take("Q")
            if item in _SCALARS:  # skip fixed-size arrays in one step
                self.pos += count * struct.calcsize("<" + _SCALARS[item])
                return None
            if item == _STRING:  # skip string arrays (the vocabulary) without decoding them
                data, pos, end = self.data, self.pos, len(self.data)
                for _ in range(count):
                    if pos + 8 > end:
                        break
                    pos += 8 + int.from_bytes(data[pos : pos + 8], "little")
                else:
                    if pos <= end:
                        self.pos = pos
                        return None
                raise DistcharError(f"GGUF file {self.path} is truncated inside its header.")
                return None
            for _ in range(count):
                self.value(item)
            return None
        if kind not in _SCALARS:
            raise DistcharError(f"GGUF file {self.path} has an unknown metadata type {kind}; it is corrupt.")
        return self.take(_SCALARS[kind])


def read_gguf_header(path: Path) -> tuple[str, list[dict]]:
    """(general.architecture, tensors): each tensor a dict with name, type (ggml name), shape
    (row-major, rows first), offset and n_bytes (absolute, in the file), raw_shape and raw_dtype
    (the array ``gguf.quants.dequantize`` takes)."""
    from gguf.constants import GGML_QUANT_SIZES, GGMLQuantizationType

    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(min(size, 64 * 2**20))
    if head[:4] != b"GGUF":
        raise DistcharError(f"{path} is not a GGUF file (it does not start with 'GGUF').")
    cursor = _Cursor(head, path)
    cursor.pos = 4
    version, n_tensors, n_kv = cursor.take("I"), cursor.take("Q"), cursor.take("Q")
    if version not in (2, 3):
        raise DistcharError(f"GGUF file {path} has version {version}; versions 2 and 3 are supported.")
    meta = {}
    for _ in range(n_kv):
        key, kind = cursor.string(), cursor.take("I")
        value = cursor.value(kind)
        if key in ("general.architecture", "general.alignment"):
            meta[key] = value
    infos = []
    for _ in range(n_tensors):
        name, n_dims = cursor.string(), cursor.take("I")
        dims = [cursor.take("Q") for _ in range(n_dims)]
        infos.append((name, dims, cursor.take("I"), cursor.take("Q")))
    alignment = int(meta.get("general.alignment", 32))
    data_start = (cursor.pos + alignment - 1) // alignment * alignment
    if "general.architecture" not in meta:
        raise DistcharError(f"GGUF file {path} has no general.architecture entry.")
    tensors = []
    for name, dims, kind, offset in infos:
        qtype = GGMLQuantizationType(kind)
        block, type_size = GGML_QUANT_SIZES[qtype]
        shape = tuple(reversed(dims))
        n_bytes = int(np.prod(dims)) * type_size // block
        start = data_start + offset
        if start + n_bytes > size:
            raise DistcharError(
                f"GGUF file {path} is truncated: tensor {name} ends at byte {start + n_bytes} of a {size}-byte file."
            )
        if qtype.name in _PLAIN_DTYPES:
            raw_shape, raw_dtype = shape, np.dtype(_PLAIN_DTYPES[qtype.name]).name
        else:
            raw_shape, raw_dtype = (*shape[:-1], shape[-1] // block * type_size), "uint8"
        tensors.append({"name": name, "type": qtype.name, "shape": shape, "offset": start, "n_bytes": n_bytes,
                        "raw_shape": raw_shape, "raw_dtype": raw_dtype})  # fmt: skip
    return str(meta["general.architecture"]), tensors
