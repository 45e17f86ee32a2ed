"""The scores, checked by hand on small cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from models.forecast import coverage, mae, pinball_loss, quantile_column
from models.forecast.backtest import score
from models.forecast.quantiles import weighted_quantiles


def test_mae_by_hand() -> None:
    # |1-2| + |2-2| + |3-7| = 5 over 3
    assert mae([1.0, 2.0, 3.0], [2.0, 2.0, 7.0]) == pytest.approx(5 / 3)


def test_mae_skips_missing_pairs() -> None:
    assert mae([1.0, np.nan, 3.0], [2.0, 5.0, np.nan]) == pytest.approx(1.0)
    assert math.isnan(mae([np.nan], [1.0]))


def test_pinball_by_hand() -> None:
    actual = [10.0, 10.0, 10.0]
    predicted = [8.0, 10.0, 13.0]  # errors y - p: +2, 0, -3
    # q = 0.1: under-forecast costs 0.1 per unit, over-forecast 0.9: (0.2 + 0 + 2.7) / 3
    assert pinball_loss(actual, predicted, 0.1) == pytest.approx(2.9 / 3)
    # q = 0.9: (1.8 + 0 + 0.3) / 3
    assert pinball_loss(actual, predicted, 0.9) == pytest.approx(2.1 / 3)
    # q = 0.5 is half the MAE
    assert pinball_loss(actual, predicted, 0.5) == pytest.approx(mae(actual, predicted) / 2)


def test_pinball_is_zero_only_for_a_perfect_forecast() -> None:
    assert pinball_loss([1.0, -5.0], [1.0, -5.0], 0.3) == 0.0
    assert pinball_loss([1.0], [1.1], 0.3) > 0.0


@pytest.mark.parametrize("q", [0.0, 1.0, -0.1, 1.5])
def test_pinball_rejects_levels_outside_0_1(q) -> None:
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        pinball_loss([1.0], [1.0], q)


def test_coverage_by_hand() -> None:
    # inside, on the lower edge, above, below
    assert coverage([5.0, 1.0, 9.0, 0.0], [1.0, 1.0, 1.0, 1.0], [8.0, 8.0, 8.0, 8.0]) == 0.5


def test_score_reads_the_quantile_columns() -> None:
    frame = pd.DataFrame({"q10": [0.0, 0.0], "q50": [1.0, 3.0], "q90": [4.0, 4.0]})
    scores = score(np.array([2.0, 5.0]), frame, (0.1, 0.5, 0.9))

    assert scores.n == 2
    assert scores.mae == pytest.approx(1.5)  # |2-1|, |5-3|
    assert scores.pinball[0.1] == pytest.approx((0.2 + 0.5) / 2)
    # 2 below 4 costs (1 - 0.9) * 2, 5 above 4 costs 0.9 * 1
    assert scores.pinball[0.9] == pytest.approx((0.2 + 0.9) / 2)
    assert scores.pinball[0.9] == pytest.approx(pinball_loss([2.0, 5.0], [4.0, 4.0], 0.9))
    assert scores.mean_pinball == pytest.approx(np.mean(list(scores.pinball.values())))
    assert scores.coverage == 0.5


def test_quantile_column_names() -> None:
    assert [quantile_column(q) for q in (0.1, 0.5, 0.9)] == ["q10", "q50", "q90"]
    assert quantile_column(0.025) == "q2.5"
    assert quantile_column(0.05, "arrival") == "arrival_q5"


def test_weighted_quantiles_match_numpy_with_equal_weights() -> None:
    values = np.array([3.0, 1.0, 4.0, 1.5, 9.0, 2.6])
    levels = [0.1, 0.5, 0.9]
    got = weighted_quantiles(values, np.ones_like(values), levels)

    assert got == pytest.approx(np.quantile(values, levels, method="hazen"))


def test_weighted_quantiles_by_hand() -> None:
    # Each value sits at the middle of its weight: 0 at 0.005, 10 at 0.5, 20 at 0.995; levels
    # in between are linear: 0.1 -> 10 * 0.095 / 0.495.
    got = weighted_quantiles([20.0, 0.0, 10.0], [1.0, 1.0, 98.0], [0.1, 0.5, 0.9])
    assert got == pytest.approx([10 * 0.095 / 0.495, 10.0, 10 + 10 * 0.4 / 0.495])
