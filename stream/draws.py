"""Poisson draws for online bagging, compiled, from numpy's own generator stream.

``numpy.random.Generator.poisson`` costs about 22 ns a draw (a call through the bit generator per
uniform, ``exp(-lam)`` per draw); a forest of 20 trees draws 20 per event. Here the draws run in a
kernel that steps numpy's PCG64 itself, with numpy's algorithm for ``lam < 10`` (multiply uniforms
until the product falls to ``exp(-lam)``), on a working copy of the generator's state that its owner writes back
before the generator is saved or used otherwise: the same draws and the same generator state as
``rng.poisson(lam, shape)`` (tested against it), so checkpoints and seeded runs are unchanged.
Other generators and ``lam >= 10`` (numpy's rejection method) stay with numpy.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

# PCG64's 128-bit multiplier, as its high and low 64 bits.
MULTIPLIER_HIGH = np.uint64(2549297995355413924)
MULTIPLIER_LOW = np.uint64(4865540595714422341)
MASK64 = (1 << 64) - 1
HIGH, LOW, INC_HIGH, INC_LOW = 0, 1, 2, 3  # a state array's entries


def _mul_high_typing(typingctx: Any, a: Any, b: Any) -> Any:
    """The high 64 bits of the 128-bit product of two uint64 (one machine multiply)."""

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        wide = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], wide), builder.zext(args[1], wide))
        return builder.trunc(builder.lshr(product, ir.Constant(wide, 64)), ir.IntType(64))

    return types.uint64(types.uint64, types.uint64), codegen


_mul_high: Any = intrinsic(_mul_high_typing)


@njit(cache=True, inline="always")
def _step(high: np.uint64, low: np.uint64, inc_high: np.uint64, inc_low: np.uint64) -> tuple[np.uint64, np.uint64]:
    """PCG64's state after one step: state * multiplier + increment, mod 2**128."""
    new_low = low * MULTIPLIER_LOW
    new_high = _mul_high(low, MULTIPLIER_LOW) + low * MULTIPLIER_HIGH + high * MULTIPLIER_LOW
    low = new_low + inc_low
    return new_high + inc_high + (np.uint64(1) if low < new_low else np.uint64(0)), low


@njit(cache=True, inline="always")
def _double(high: np.uint64, low: np.uint64) -> float:
    """The uniform in [0, 1) a stepped state gives (XSL-RR output, numpy's ``next_double``)."""
    xored = high ^ low
    rotation = high >> np.uint64(58)
    bits = (xored >> rotation) | (xored << ((np.uint64(64) - rotation) & np.uint64(63)))
    return float(np.int64(bits >> np.uint64(11))) * (1.0 / 9007199254740992.0)


@njit(cache=True)
def poisson_weights(state: np.ndarray, lam: float, ws: np.ndarray, out: np.ndarray) -> None:
    """``out[i, t] = ws[i] * Poisson(lam)``, draws in row-major order (numpy's multiplication
    method, ``lam < 10``); ``state``: PCG64's (high, low, increment's high, low), stepped."""
    floor = math.exp(-lam)
    high, low, inc_high, inc_low = state[HIGH], state[LOW], state[INC_HIGH], state[INC_LOW]
    trees = out.shape[1]
    counts = np.empty(out.size + 1, dtype=np.int64)  # + 1: the loop writes one past the last draw
    k, count, product = 0, 0, 1.0
    # One uniform per turn, without a branch on it (a draw ends at random: a branch would miss
    # half the time): a draw's count is written at every turn and kept when the draw ends.
    while k < out.size:
        high, low = _step(high, low, inc_high, inc_low)
        product *= _double(high, low)
        going = product > floor
        counts[k] = count
        k += 0 if going else 1
        count = count + 1 if going else 0
        product = product if going else 1.0
    for k in range(out.size):
        out[k // trees, k % trees] = ws[k // trees] * counts[k]
    state[HIGH], state[LOW] = high, low


def pcg64_state(rng: np.random.Generator) -> np.ndarray | None:
    """A working copy of ``rng``'s PCG64 state for ``poisson_weights``; None for other generators."""
    generator = rng.bit_generator
    if type(generator) is not np.random.PCG64:
        return None
    inner = generator.state["state"]
    return np.array(
        [inner["state"] >> 64, inner["state"] & MASK64, inner["inc"] >> 64, inner["inc"] & MASK64], dtype=np.uint64
    )  # fmt: skip


def store_pcg64_state(rng: np.random.Generator, state: np.ndarray) -> None:
    """Write a working copy's state back into ``rng`` (as if it had drawn the numbers itself)."""
    saved = rng.bit_generator.state
    saved["state"]["state"] = (int(state[HIGH]) << 64) | int(state[LOW])
    rng.bit_generator.state = saved  # has_uint32 / uinteger: untouched, as by numpy's own doubles
