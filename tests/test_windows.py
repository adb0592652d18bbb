"""Ring buffers and their sorted views."""

from __future__ import annotations

import pickle

import numpy as np

from stream.windows import Ranked, ring_write


def test_ring_write_keeps_the_newest_in_arrival_slots() -> None:
    rng = np.random.default_rng(0)
    for _ in range(300):
        size = int(rng.integers(1, 20))
        values, labels = np.zeros((2, size)), np.zeros(size, dtype=np.int64)
        expected_values, expected_labels = np.zeros((2, size)), np.zeros(size, dtype=np.int64)
        filled = seen = 0
        for _ in range(5):
            n = int(rng.integers(0, 30))
            new_values, new_labels = rng.normal(size=(2, n)), rng.integers(0, 2, n)
            filled = ring_write(values, labels, filled, new_values, new_labels)
            for i in range(n):  # one at a time, slot = arrival index modulo size
                expected_values[:, (seen + i) % size], expected_labels[(seen + i) % size] = new_values[:, i], new_labels[i]
            seen += n
        assert filled == seen
        assert np.array_equal(values, expected_values) and np.array_equal(labels, expected_labels)


def test_ranked_rows_equal_a_fresh_sort_of_the_ring_however_it_was_written() -> None:
    rng = np.random.default_rng(3)
    for _ in range(100):
        size = int(rng.integers(1, 60))
        values, labels = np.zeros((2, size)), np.zeros(size, dtype=np.int64)
        ranked, filled = Ranked(2, size), 0
        for _ in range(12):
            n = int(rng.integers(0, 2 * size))
            filled = ring_write(values, labels, filled, np.round(rng.random((2, n)), 1), np.zeros(n, dtype=np.int64))  # ties
            if rng.random() < 0.1:
                filled = 0  # a window that starts over (the contest re-opened)
                ranked.restart()
            if rng.random() < 0.6:  # asked now and then, as rankings are
                m = min(filled, size)
                rows = ranked.update(values, filled)
                assert all(np.array_equal(rows[i], np.sort(values[i, :m])) for i in range(2))
        restored = pickle.loads(pickle.dumps(ranked))  # not saved: sorted afresh at the next ask
        m = min(filled, size)
        assert np.array_equal(restored.update(values, filled)[1], np.sort(values[1, :m]))
