"""Byte-level mutations of a valid file, for the loaders' fuzz tests (gradflow's checkpoints,
torch.save files, safetensors): hypothesis draws up to four edits, each (kind, position, byte,
length) with the position taken modulo the file's size."""
from __future__ import annotations

from hypothesis import strategies as st

MUTATIONS = st.lists(st.tuples(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]),
                               st.integers(0, 1 << 20), st.integers(0, 255), st.integers(1, 16)),
                     min_size=1, max_size=4)


def mutate(data: bytes, mutations: list) -> bytes:
    """`data` with the drawn edits applied in order."""
    out = bytearray(data)
    for kind, position, byte, length in mutations:
        at = position % max(len(out), 1)
        if kind == "flip" and out:
            out[at] ^= 1 << (byte % 8)
        elif kind == "set" and out:
            out[at] = byte
        elif kind == "insert":
            out[at:at] = bytes([byte]) * length
        elif kind == "delete":
            del out[at:at + length]
        elif kind == "truncate":
            del out[at:]
    return bytes(out)
