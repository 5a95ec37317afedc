"""Sequence-number space helpers.

Inside the stack every sequence number is an *unwrapped* Python int that keeps growing past 2**32, so
comparisons are plain `<`; numbers are wrapped only on the wire. An incoming 32-bit value is unwrapped
to the integer nearest a reference point (RFC 9293 §3.4's modular comparison, done once at the edge).
"""

from __future__ import annotations

MOD = 1 << 32
MASK = MOD - 1
HALF = 1 << 31


def unwrap(value: int, reference: int) -> int:
    """The unwrapped number congruent to value (mod 2**32) nearest to reference."""
    return reference + ((value - reference + HALF) & MASK) - HALF


def wrap(value: int) -> int:
    return value & MASK
