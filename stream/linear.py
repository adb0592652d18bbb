"""Logistic regression by plain SGD, compiled: the linear candidate of the model contest.

The same learner as river's ``LogisticRegression(optimizer=SGD(lr))`` (log loss, zero start,
intercept step 0.01, no regularisation), on the standardised vector, so scoring and a step are one
small numba kernel each instead of dict arithmetic.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

INTERCEPT_LR = 0.01  # river's default
_CLIP = 1e12  # river's default gradient clip


@njit(cache=True, inline="always")
def logit(coef: np.ndarray, z: np.ndarray) -> float:
    """``coef[:-1] . z + coef[-1]``."""
    total = float(coef[-1])
    for i in range(z.shape[0]):
        total += coef[i] * z[i]
    return total


@njit(cache=True, inline="always")
def sgd_step(coef: np.ndarray, z: np.ndarray, y: int, w: float, lr: float) -> None:
    """One weighted step down the log loss of ``(z, y)``."""
    raw = min(max(logit(coef, z), -700.0), 700.0)
    g = min(max((1.0 / (1.0 + math.exp(-raw)) - y) * w, -_CLIP), _CLIP)
    for i in range(z.shape[0]):
        coef[i] -= lr * g * z[i]
    coef[-1] -= INTERCEPT_LR * g


@njit(cache=True)
def sgd_steps(coef: np.ndarray, zs: np.ndarray, ys: np.ndarray, ws: np.ndarray, lr: float) -> None:
    """``sgd_step`` of every row, in order."""
    for i in range(zs.shape[0]):
        sgd_step(coef, zs[i], ys[i], ws[i], lr)


@njit(cache=True)
def probas(coef: np.ndarray, zs: np.ndarray, out: np.ndarray) -> None:
    for i in range(zs.shape[0]):
        raw = min(max(logit(coef, zs[i]), -700.0), 700.0)
        out[i] = 1.0 / (1.0 + math.exp(-raw))


class LogisticRegression:
    """``proba(z)`` and ``learn(z, y, w)``; the weights are allocated at the first event.

    >>> import numpy as np
    >>> model = LogisticRegression(learning_rate=0.1)
    >>> rng = np.random.default_rng(0)
    >>> for _ in range(3000):
    ...     z = rng.normal(size=2)
    ...     model.learn(z, int(z[0] + z[1] > 0), 1.0)
    >>> model.proba(np.array([2.0, 2.0])) > 0.9 > 0.1 > model.proba(np.array([-2.0, -2.0]))
    True
    """

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.coef = np.zeros(0)

    def proba(self, z: np.ndarray) -> float:
        if not self.coef.shape[0]:
            return 0.5  # river's untrained logistic regression says 0.5 too
        raw = min(max(logit(self.coef, z), -700.0), 700.0)
        return 1.0 / (1.0 + math.exp(-raw))

    def proba_many(self, zs: np.ndarray) -> np.ndarray:
        out = np.full(zs.shape[0], 0.5)
        if self.coef.shape[0]:
            probas(self.coef, zs, out)
        return out

    def learn(self, z: np.ndarray, y: int, w: float) -> None:
        if not self.coef.shape[0]:
            self.coef = np.zeros(z.shape[0] + 1)
        sgd_step(self.coef, z, int(y), w, self.learning_rate)

    def learn_many(self, zs: np.ndarray, ys: np.ndarray, ws: np.ndarray) -> None:
        if not self.coef.shape[0]:
            self.coef = np.zeros(zs.shape[1] + 1)
        sgd_steps(self.coef, zs, ys, ws, self.learning_rate)
