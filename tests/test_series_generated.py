"""The generated seasonal series of lesson 13: deterministic, with a known lag structure."""

import numpy as np
import pytest

from course.datasets.series import SERIES, load_series, seasonal_ar


def test_seasonal_ar_is_deterministic_and_loads_by_name():
    values = load_series("seasonal_ar")
    assert values.shape == (1000,) and values.dtype == np.float32 and np.isfinite(values).all()
    np.testing.assert_array_equal(values, seasonal_ar())
    assert SERIES["seasonal_ar"] == 24
    assert not np.array_equal(values, seasonal_ar(seed=14))


def test_seasonal_ar_follows_its_recursion_exactly():
    """The gold lag structure: every value is 0.4 * lag 1 + 0.55 * lag 24 + standard normal noise."""
    recent, seasonal, period = 0.4, 0.55, 24
    values = seasonal_ar(length=400, period=period, recent=recent, seasonal=seasonal, burn_in=0).astype(np.float64)
    noise = np.random.default_rng(13).standard_normal(400)
    t = np.arange(period, 400)
    np.testing.assert_allclose(values[t], recent * values[t - 1] + seasonal * values[t - period] + noise[t],
                               atol=1e-5)


def test_least_squares_on_all_lags_recovers_lags_1_and_24():
    values = seasonal_ar(length=4000).astype(np.float64)
    lags = np.arange(1, 31)
    design = np.stack([values[30 - lag:len(values) - lag] for lag in lags], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, values[30:], rcond=None)
    assert abs(coefficients[0] - 0.4) < 0.05 and abs(coefficients[23] - 0.55) < 0.05
    others = np.delete(coefficients, [0, 23])
    assert np.abs(others).max() < 0.06


def test_seasonal_ar_rejects_bad_settings():
    with pytest.raises(ValueError, match="stationary"):
        seasonal_ar(recent=0.5, seasonal=0.5)
    with pytest.raises(ValueError, match="period"):
        seasonal_ar(period=1)
    with pytest.raises(ValueError, match="length"):
        seasonal_ar(length=0)
