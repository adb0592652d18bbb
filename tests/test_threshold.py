from __future__ import annotations

import pickle

import numpy as np
import pytest

from stream.config import ThresholdSettings
from stream.threshold import Threshold, TopScores, budget_cut
from stream.windows import Ranked, ring_write


def test_budget_mode_alerts_on_the_top_share() -> None:
    threshold = Threshold(ThresholdSettings(mode="budget", alert_budget=0.02, window=5000, refresh_every=100))
    rng = np.random.default_rng(0)
    alerts = 0
    scores = rng.beta(0.5, 5.0, size=30_000)
    for p in scores:
        alerts += p > threshold.value
        threshold.observe_score(float(p))
    late = scores[10_000:]
    assert alerts / len(scores) == pytest.approx(0.02, abs=0.006)
    assert np.mean(late > threshold.value) == pytest.approx(0.02, abs=0.006)


def test_budget_mode_does_not_flood_on_tied_scores() -> None:
    threshold = Threshold(ThresholdSettings(mode="budget", alert_budget=0.01, window=1000, refresh_every=100))
    for _ in range(1000):
        threshold.observe_score(0.0)
    assert not 0.0 > threshold.value


def budget_run(scores: np.ndarray, budget: float = 0.01) -> tuple[Threshold, np.ndarray]:
    threshold = Threshold(ThresholdSettings(mode="budget", alert_budget=budget, window=5000, refresh_every=100))
    return threshold, np.concatenate([threshold.judge(scores[i : i + 64])[1][0] for i in range(0, len(scores), 64)])


@pytest.mark.parametrize("tied_share", [0.04, 0.02, 0.002])
def test_a_tie_at_the_top_alerts_the_budget_not_all_of_it_or_none(tied_share: float) -> None:
    """Many events scored exactly 1.0 (every tree sure): the budget's share of them alerts; with fewer
    than the budget, all of them and the next highest."""
    rng = np.random.default_rng(4)
    scores = np.where(rng.random(40_000) < tied_share, 1.0, rng.beta(0.5, 5.0, size=40_000) * 0.9)
    _, alerts = budget_run(scores)
    late, top = alerts[10_000:], scores[10_000:] == 1.0
    assert late.mean() == pytest.approx(0.01, abs=0.002)
    if tied_share > 0.01:
        assert np.all(top[late])  # only the sure ones alert, in turns
    else:
        assert np.all(late[top])  # every sure one alerts, the budget's rest goes to the next highest


def test_a_tie_just_above_the_cut_does_not_flood() -> None:
    rng = np.random.default_rng(5)
    scores = rng.beta(0.5, 5.0, size=40_000) * 0.6
    scores[rng.random(40_000) < 0.05] = 0.7  # a leaf that 5% of the events fall into
    scores[rng.random(40_000) < 0.003] = 0.95
    _, alerts = budget_run(scores)
    assert alerts[10_000:].mean() == pytest.approx(0.01, abs=0.002)


def test_scores_that_keep_rising_cannot_break_the_budget() -> None:
    """A model growing surer: each positive outscores every earlier one, so all of them clear a cut
    learned from past scores; the bound holds the alerts to 1.5 x the budget in every window."""
    rng = np.random.default_rng(8)
    n = 60_000
    positive = rng.random(n) < 0.07
    scores = np.where(positive, 0.9 + 0.1 * np.arange(n) / n, rng.random(n) * 0.5)
    _, alerts = budget_run(scores)
    in_window = np.convolve(alerts, np.ones(5000, dtype=int), mode="valid")  # every window of 5000 events
    assert in_window.max() <= 75 and alerts.mean() > 0.01  # 1.5% of 5000; the budget is used
    assert np.all(positive[alerts])


def test_tied_turns_continue_across_a_checkpoint() -> None:
    rng = np.random.default_rng(6)
    scores = np.where(rng.random(20_000) < 0.05, 1.0, rng.random(20_000) * 0.5)
    _, expected = budget_run(scores)
    threshold, first = budget_run(scores[:10_048])
    threshold = pickle.loads(pickle.dumps(threshold))
    rest = np.concatenate([threshold.judge(scores[i : i + 64])[1][0] for i in range(10_048, 20_000, 64)])
    assert np.array_equal(np.concatenate([first, rest]), expected)


def test_budget_cut_is_the_kth_highest_with_the_tie_share_that_completes_k() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        ranked = np.sort(np.round(rng.random(int(rng.integers(1, 400))), 1))  # ties
        budget = float(rng.choice([0.01, 0.05, 0.3]))
        cut, share = budget_cut(ranked, ranked.shape[0], budget)
        k = max(1, round(budget * ranked.shape[0]))
        assert cut == ranked[-k]
        if cut > 0:
            assert np.sum(ranked > cut) + share * np.sum(ranked == cut) == pytest.approx(k)
        else:
            assert share == 0.0


def test_the_highest_scores_cut_as_the_whole_window_sorted_however_the_ring_was_written() -> None:
    rng = np.random.default_rng(4)
    for trial in range(150):
        size = int(rng.integers(1, 300))
        budget = float(rng.choice([0.005, 0.01, 0.05, 0.3, 1.0]))
        values, labels = np.zeros((1, size)), np.zeros(size, dtype=np.int64)
        top, filled = TopScores(size), 0
        drift = 0.0
        for _ in range(30):
            n = int(rng.integers(0, size // 3 + 2)) if rng.random() < 0.9 else int(rng.integers(size, 2 * size + 1))
            drift += float(rng.normal(0.0, 0.3))  # the scores' level wanders: the highest leave, or crowd in
            scores = np.round(np.clip(rng.random(n) + drift, 0.0, 1.0), int(rng.choice([1, 3])))  # ties, zeros
            filled = ring_write(values, labels, filled, scores[None, :], np.zeros(n, dtype=np.int64))
            if filled and rng.random() < 0.7:
                m = min(filled, size)
                assert top.cut(values[0], filled, budget) == budget_cut(np.sort(values[0, :m]), m, budget), trial
        if filled:
            restored = pickle.loads(pickle.dumps(top))  # not saved: picked afresh at the next ask
            m = min(filled, size)
            assert restored.cut(values[0], filled, budget) == budget_cut(np.sort(values[0, :m]), m, budget)


def test_a_threshold_saved_with_the_whole_window_sorted_loads_and_cuts_alike() -> None:
    settings = ThresholdSettings(alert_budget=0.02, window=500, refresh_every=40)
    threshold = Threshold(settings)
    rng = np.random.default_rng(5)
    for _ in range(30):
        threshold.judge(rng.random(64))
    state = pickle.loads(pickle.dumps(threshold)).__dict__
    del state["top"]
    state["ranked"] = Ranked(1, 500)  # what builds before TopScores saved
    old = Threshold.__new__(Threshold)
    old.__setstate__(state)
    for _ in range(30):
        scores = rng.random(64)
        assert [a.tolist() for a in old.judge(scores)] == [a.tolist() for a in threshold.judge(scores)]


def test_gmean_mode_finds_the_separating_cut() -> None:
    threshold = Threshold(ThresholdSettings(mode="gmean", window=2000, refresh_every=50))
    rng = np.random.default_rng(1)
    for _ in range(2000):
        y = int(rng.random() < 0.1)
        threshold.observe_label(y, float(rng.uniform(0.6, 1.0) if y else rng.uniform(0.0, 0.4)))
    assert 0.35 < threshold.value < 0.65


def test_every_score_gets_a_class_decision_beside_the_budget_alert() -> None:
    """Budget mode: the alerts are the budget rule's whatever the labels; the class decision is the
    alert until labels of both classes give a balanced cut, then the score above it."""
    settings = ThresholdSettings(alert_budget=0.02, window=2000, refresh_every=50)
    with_labels, without = Threshold(settings), Threshold(settings)
    rng = np.random.default_rng(4)
    for step in range(80):
        ys = (rng.random(64) < 0.1).astype(np.int64)
        scores = np.where(ys == 1, rng.uniform(0.5, 1.0, 64), rng.uniform(0.0, 0.6, 64))
        cuts, (alerts, predicted) = with_labels.judge(scores)
        alone_cuts, (alone_alerts, _) = without.judge(scores)
        assert cuts.tolist() == alone_cuts.tolist() and alerts.tolist() == alone_alerts.tolist()
        if with_labels.balanced is None:
            assert np.array_equal(predicted, alerts)
        else:
            assert np.array_equal(predicted, scores > with_labels.balanced) and 0.45 < with_labels.balanced < 0.65
        if step >= 3:  # labels of both classes from the fourth micro-batch on
            with_labels.observe_labels(ys, scores)
    assert with_labels.balanced is not None and alerts.mean() < predicted.mean()


def test_a_threshold_saved_before_the_class_decision_loads() -> None:
    for mode in ("gmean", "budget"):
        threshold = Threshold(ThresholdSettings(mode=mode, window=500, refresh_every=20))
        for y, p in [(0, 0.2), (1, 0.8)] * 20:
            threshold.observe_label(y, p)
        state = pickle.loads(pickle.dumps(threshold)).__dict__
        del state["balanced"], state["by_class"]
        state["gmean_ready"] = True  # what gmean mode saved; budget mode saved False and never fed its ring
        old = Threshold.__new__(Threshold)
        old.__setstate__(state)
        assert old.balanced == (threshold.value if mode == "gmean" else None)
        old.observe_labels(np.array([0] * 20), np.full(20, 0.1))
        threshold.observe_labels(np.array([0] * 20), np.full(20, 0.1))
        assert old.balanced == threshold.balanced


def test_gmean_mode_decides_by_the_budget_until_labels_of_both_classes_give_it_a_cut() -> None:
    threshold = Threshold(ThresholdSettings(mode="gmean", alert_budget=0.02, window=2000, refresh_every=50))
    rng = np.random.default_rng(2)
    scores = rng.beta(0.5, 5.0, size=5000)
    alerts = sum(int(np.sum(threshold.judge(scores[i : i + 100])[1][0])) for i in range(0, 5000, 100))
    assert alerts / 5000 == pytest.approx(0.02, abs=0.006)  # no labels yet: the alert budget, not a fixed 0.5
    for _ in range(200):
        threshold.observe_label(0, float(rng.uniform(0.0, 0.4)))  # one class only: still no G-mean cut
    assert threshold.balanced is None
    for _ in range(2000):
        y = int(rng.random() < 0.1)
        threshold.observe_label(y, float(rng.uniform(0.6, 1.0) if y else rng.uniform(0.0, 0.4)))
    assert threshold.balanced == threshold.value and 0.35 < threshold.value < 0.65
    cut = threshold.value
    assert np.all(threshold.judge(np.array([0.99, 0.01]))[0] == cut)  # the budget window no longer moves it


def test_budget_verdicts_do_not_depend_on_how_the_scores_are_split_into_calls() -> None:
    """A restart or a Kafka poll of another size hands the rule other chunks: the verdicts, the cut and
    the bound's count must not change (the bound's cap was once worked out per call while the
    window filled, so a resumed service alerted on other events than an unbroken one)."""
    rng = np.random.default_rng(9)
    n = 12_000  # the window (5,000) fills, then slides
    positive = rng.random(n) < 0.03
    scores = np.where(positive, 0.9 + 0.1 * np.arange(n) / n, rng.random(n) * 0.5)  # the bound withholds
    scores[rng.random(n) < 0.02] = 0.95  # and ties take turns
    settings = ThresholdSettings(window=5_000, refresh_every=100)
    whole = Threshold(settings)
    cuts, (alerts, _) = whole.judge(scores)
    assert whole.withheld > 0
    for seed in range(3):
        split = Threshold(settings)
        bounds = np.sort(np.random.default_rng(seed).choice(np.arange(1, n), size=300, replace=False))
        parts = [split.judge(chunk) for chunk in np.split(scores, bounds)]
        assert np.array_equal(np.concatenate([p[1][0] for p in parts]), alerts)
        assert np.array_equal(np.concatenate([p[0] for p in parts]), cuts)
        assert (split.withheld, split.alerted, split.value) == (whole.withheld, whole.alerted, whole.value)
