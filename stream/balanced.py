"""The balanced cut: the score cut with the best G-mean = sqrt(TPR * TNR) on recent labelled scores.

Only the window's distinct scores are cuts, and the best one is at a positive's score: lowering a cut
to the next positive's score gains a positive, lowering it any less only loses negatives. So the cut
needs, for each positive in the window, the number of negatives scored as high or higher. Those
counts are kept with the positives (``above``) and brought up to date at each refresh from what the
ring's writes changed: a negative entering or leaving moves the counts of the positives at or below
it (a merge of two short sorted runs), a positive entering is counted against the window's negatives
(three binary searches). The negatives stay sorted for that: the ones that entered and left since the
last merge are kept aside (``added``, ``gone``: short, sorted) and merged into the rest (``kept``)
once there are ``merge_at`` of them, since a merge of the whole window is most of the cost. A refresh
of 100 labels in a 20,000-label window at 1% positives: about 20 us (a sort of the window: 1.5 ms).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from stream.windows import SortedView, replace_sorted

NONE = np.zeros(0)


def best_gmean_threshold(scores: np.ndarray, labels: np.ndarray) -> float | None:
    """The cut (alert when ``p > cut``) maximising sqrt(TPR * TNR); None without both classes.

    >>> best_gmean_threshold(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]))
    0.5
    """
    negatives, positives, above = sorted_by_class(scores, labels)
    cut = best_cut(positives, above, positives.shape[0], negatives, NONE, NONE)
    return None if math.isnan(cut) else cut


def sorted_by_class(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The negatives' and the positives' scores, sorted, and for each positive the negatives scored
    as high or higher."""
    negatives, positives = np.sort(scores[labels == 0]), np.sort(scores[labels == 1])
    return negatives, positives, negatives.shape[0] - np.searchsorted(negatives, positives)


@njit(cache=True)
def best_cut(
    positives: np.ndarray, above: np.ndarray, n_pos: int, kept: np.ndarray, added: np.ndarray, gone: np.ndarray
) -> float:  # fmt: skip
    """``best_gmean_threshold`` of a window whose positives' scores are ``positives[:n_pos]``
    (sorted; ``above``: the negatives scored as high or higher, each) and whose negatives' are
    ``kept`` and ``added`` but not ``gone`` (a multiset; each sorted). NaN without both classes.
    Among equal G-means the highest cut wins; the cut lies halfway to the next lower score."""
    n_neg = kept.shape[0] + added.shape[0] - gone.shape[0]
    if n_pos == 0 or n_neg == 0:
        return math.nan
    best, at, left_of_best = 0.0, -1.0, 0
    i = n_pos - 1
    while i >= 0:  # each distinct positive score, from the highest
        left = i
        while left > 0 and positives[left - 1] == positives[i]:
            left -= 1
        g = math.sqrt(((n_pos - left) / n_pos) * (1.0 - above[i] / n_neg))
        if g > best:
            best, at, left_of_best = g, positives[i], left
        i = left - 1
    if best == 0.0:  # no cut catches a positive without every negative: cut below the highest score
        at = max(positives[n_pos - 1], _highest_negative_below(kept, added, gone, math.inf))
        left_of_best = np.searchsorted(positives[:n_pos], at)
    below = _highest_negative_below(kept, added, gone, at)
    if left_of_best > 0:
        below = max(below, positives[left_of_best - 1])
    if below == -math.inf:
        below = at - 1e-9
    return (at + below) / 2.0


@njit(cache=True)
def _highest_negative_below(kept: np.ndarray, added: np.ndarray, gone: np.ndarray, v: float) -> float:
    """The highest negative's score under ``v`` (-inf if none): the highest of ``kept`` and
    ``added`` that ``gone`` does not take every copy of."""
    while True:
        i, j = np.searchsorted(kept, v), np.searchsorted(added, v)
        u = max(kept[i - 1] if i > 0 else -math.inf, added[j - 1] if j > 0 else -math.inf)
        if u == -math.inf or _count(kept, u) + _count(added, u) > _count(gone, u):
            return u
        v = u


@njit(cache=True, inline="always")
def _count(sorted_values: np.ndarray, v: float) -> int:
    return int(np.searchsorted(sorted_values, v, side="right") - np.searchsorted(sorted_values, v))


@njit(cache=True)
def sync_window(
    shadow: np.ndarray, shadow_labels: np.ndarray, values: np.ndarray, labels: np.ndarray, synced: int, filled: int,
    positives: np.ndarray, above: np.ndarray, added: np.ndarray, gone: np.ndarray, sizes: np.ndarray,
    kept: np.ndarray, merge_at: int,
) -> np.ndarray:  # fmt: skip
    """Bring the sorted window up to a labelled ring's writes ``synced`` .. ``filled - 1`` (fewer
    than its size; ``shadow``, ``shadow_labels``: the ring as of write ``synced``, which follow).
    ``sizes``: the used lengths of ``positives`` (and ``above``), ``added`` and ``gone``, updated in
    place. Returns ``kept`` (a new array when the changes aside were merged into it)."""
    size, n = values.shape[0], filled - synced
    entering, leaving = np.empty(n), np.empty(n)  # negatives
    new_positives = np.empty(n)
    n_in = n_out = n_new = 0
    for w in range(synced, filled):
        slot = w % size
        if w >= size:
            if shadow_labels[slot] == 1:
                sizes[0] = _remove(positives, above, sizes[0], shadow[slot])
            else:
                leaving[n_out] = shadow[slot]
                n_out += 1
        if labels[slot] == 1:
            new_positives[n_new] = values[slot]
            n_new += 1
        else:
            entering[n_in] = values[slot]
            n_in += 1
        shadow[slot], shadow_labels[slot] = values[slot], labels[slot]
    entering, leaving = np.sort(entering[:n_in]), np.sort(leaving[:n_out])
    _recount(positives, above, sizes[0], entering, 1)
    _recount(positives, above, sizes[0], leaving, -1)
    sizes[1] = _merge_into(added, sizes[1], entering)
    sizes[2] = _merge_into(gone, sizes[2], leaving)
    for v in new_positives[:n_new]:
        n_neg = kept.shape[0] + sizes[1] - sizes[2]
        below = np.searchsorted(kept, v) + np.searchsorted(added[: sizes[1]], v) - np.searchsorted(gone[: sizes[2]], v)
        sizes[0] = _insert(positives, above, sizes[0], v, n_neg - below)
    if sizes[1] + sizes[2] > merge_at:
        kept = _merged(kept, added[: sizes[1]], gone[: sizes[2]])
        sizes[1] = sizes[2] = 0
    return kept


@njit(cache=True)
def _remove(positives: np.ndarray, above: np.ndarray, n: int, v: float) -> int:
    """One positive scored ``v`` out of the first ``n`` (equal scores have equal counts)."""
    i = np.searchsorted(positives[:n], v)
    positives[i : n - 1], above[i : n - 1] = positives[i + 1 : n].copy(), above[i + 1 : n].copy()
    return n - 1


@njit(cache=True)
def _insert(positives: np.ndarray, above: np.ndarray, n: int, v: float, count: int) -> int:
    i = np.searchsorted(positives[:n], v)
    positives[i + 1 : n + 1], above[i + 1 : n + 1] = positives[i:n].copy(), above[i:n].copy()
    positives[i], above[i] = v, count
    return n + 1


@njit(cache=True)
def _recount(positives: np.ndarray, above: np.ndarray, n: int, negatives: np.ndarray, sign: int) -> None:
    """Each of the first ``n`` positives counts ``sign`` x the (sorted) ``negatives`` at or above it."""
    below = 0
    for k in range(n):
        while below < negatives.shape[0] and negatives[below] < positives[k]:
            below += 1
        above[k] += sign * (negatives.shape[0] - below)


@njit(cache=True)
def _merge_into(buffer: np.ndarray, n: int, new: np.ndarray) -> int:
    """Sorted ``new`` into the sorted first ``n`` of ``buffer`` (room for them), from the back."""
    i, j = n - 1, new.shape[0] - 1
    for k in range(n + new.shape[0] - 1, -1, -1):
        if j < 0:
            break
        if i >= 0 and buffer[i] > new[j]:
            buffer[k] = buffer[i]
            i -= 1
        else:
            buffer[k] = new[j]
            j -= 1
    return int(n + new.shape[0])


@njit(cache=True)
def _merged(kept: np.ndarray, added: np.ndarray, gone: np.ndarray) -> np.ndarray:
    """``kept`` with ``added`` and without ``gone`` (all sorted; a gone one is in kept or added)."""
    # What entered and left since the last merge cancels out first: every other gone one is in kept.
    staying, left = np.empty(added.shape[0]), np.empty(gone.shape[0])
    a = g = n_staying = n_left = 0
    while a < added.shape[0] or g < gone.shape[0]:
        if g == gone.shape[0] or (a < added.shape[0] and added[a] < gone[g]):
            staying[n_staying] = added[a]
            n_staying, a = n_staying + 1, a + 1
        elif a == added.shape[0] or gone[g] < added[a]:
            left[n_left] = gone[g]
            n_left, g = n_left + 1, g + 1
        else:  # equal: one entered and left
            a, g = a + 1, g + 1
    out = np.empty(kept.shape[0] + n_staying - n_left)
    replace_sorted(kept, left[:n_left], staying[:n_staying], out)
    return out


class GmeanCut(SortedView):
    """``best_gmean_threshold`` of a labelled ring buffer's window, brought up to date when asked
    (see the module text). Not saved in a checkpoint (a ``SortedView``): the first ask after a
    restore starts afresh."""

    merge_at = 2048  # negatives' changes kept aside at most (about 10 refreshes of 100 labels)

    def _reset(self) -> None:
        self.shadow = np.zeros(self.size)  # the ring's scores as of the last ask
        self.shadow_labels = np.zeros(self.size, dtype=np.int8)
        self.positives = np.zeros(self.size)  # sorted, the first sizes[0]
        self.above = np.zeros(self.size, dtype=np.int64)  # negatives scored as high or higher, each
        self.added = np.zeros(self.merge_at + self.size)  # negatives that entered since the merge
        self.gone = np.zeros(self.merge_at + self.size)  # ... and that left
        self.sizes = np.zeros(3, dtype=np.int64)  # used: positives, added, gone
        self.kept = NONE  # the negatives as of the last merge, sorted
        self.synced = -1  # nothing sorted yet

    def cut(self, values: np.ndarray, labels: np.ndarray, filled: int) -> float | None:
        """``best_gmean_threshold`` of ``values[:m]``, ``labels[:m]`` (m = min(filled, size);
        ``filled``: writes so far; ``labels`` int8, as a ``Ring`` keeps them)."""
        if self.synced < 0 or not self.synced <= filled < self.synced + self.size:  # new or all rewritten
            self._start(values, labels, filled)
        elif filled > self.synced:
            self.kept = sync_window(
                self.shadow, self.shadow_labels, values, labels, self.synced, filled, self.positives, self.above,
                self.added, self.gone, self.sizes, self.kept, self.merge_at,
            )  # fmt: skip
        self.synced = filled
        n_pos, n_added, n_gone = self.sizes.tolist()
        cut = best_cut(self.positives, self.above, n_pos, self.kept, self.added[:n_added], self.gone[:n_gone])
        return None if math.isnan(cut) else cut

    def _start(self, values: np.ndarray, labels: np.ndarray, filled: int) -> None:
        m = min(filled, self.size)
        self.shadow[:m], self.shadow_labels[:m] = values[:m], labels[:m]
        self.kept, positives, above = sorted_by_class(values[:m], labels[:m])
        self.sizes[:] = positives.shape[0], 0, 0
        self.positives[: positives.shape[0]], self.above[: positives.shape[0]] = positives, above
