import math

import pytest

from telemon.metrics import (
    METRICS,
    METRICS_BY_ID,
    UnitConversionError,
    UnknownMetricError,
    get_metric,
    to_canonical,
)

REQUIRED = {
    "spo2": ("59408-5", "%"),
    "pulse_rate": ("8867-4", "/min"),
    "systolic": ("8480-6", "mm[Hg]"),
    "diastolic": ("8462-4", "mm[Hg]"),
    "mean_arterial_pressure": ("8478-0", "mm[Hg]"),
    "glucose": ("2339-0", "mg/dL"),
    "body_temperature": ("8310-5", "Cel"),
    "body_weight": ("29463-7", "kg"),
    "respiratory_rate": ("9279-1", "/min"),
}


@pytest.mark.parametrize(("key", "expected"), REQUIRED.items())
def test_catalogue_codes_and_units(key, expected):
    metric = get_metric(key)
    assert (metric.loinc, metric.unit) == expected
    assert metric.plausible_min < metric.plausible_max


def test_storage_ids_are_unique_and_stable():
    assert len(METRICS_BY_ID) == len(METRICS)
    assert METRICS_BY_ID[1].key == "spo2"


@pytest.mark.parametrize(
    ("key", "value", "unit", "expected"),
    [
        ("spo2", 97, "%", 97.0),
        ("systolic", 16.0, "kPa", 120.0102),
        ("glucose", 5.5, "mmol/L", 99.0858),
        ("glucose", 0.0055, "mol/L", 99.0858),
        ("glucose", 0.00099, "kg/L", 99.0),
        ("body_temperature", 98.6, "[degF]", 37.0),
        ("body_temperature", 32.0, "[degF]", 0.0),
        ("body_weight", 154.0, "[lb_av]", 69.853225),
        ("body_weight", 70500, "g", 70.5),
    ],
)
def test_every_device_unit_converts_to_canonical(key, value, unit, expected):
    assert math.isclose(to_canonical(key, value, unit), expected, abs_tol=1e-3)


def test_unconvertible_unit_is_refused():
    with pytest.raises(UnitConversionError, match="'kg' to '%'"):
        to_canonical("spo2", 1, "kg")


def test_unknown_metric_names_the_known_ones():
    with pytest.raises(UnknownMetricError, match="spo2"):
        get_metric("heart_vibes")
