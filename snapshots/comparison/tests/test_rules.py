"""snapshots.comparison.rules: tolerances and deltas, with no database, Redis or IOC."""

import math

import pytest

from snapshots.comparison.rules import delta, describe_difference, numbers_within_tolerance, within_tolerance

NAN = float("nan")
INF = float("inf")


def test_equal_floats_match_with_zero_tolerances():
    assert within_tolerance(1.5, 1.5, "float", 0.0, 0.0)


def test_any_difference_fails_with_zero_tolerances():
    assert not within_tolerance(1.5, 1.5000001, "float", 0.0, 0.0)


def test_absolute_tolerance_is_inclusive():
    assert within_tolerance(10.0, 10.5, "float", 0.5, 0.0)
    assert not within_tolerance(10.0, 10.51, "float", 0.5, 0.0)


def test_relative_tolerance_scales_with_the_saved_value():
    assert within_tolerance(200.0, 201.0, "float", 0.0, 0.01)
    assert not within_tolerance(200.0, 203.0, "float", 0.0, 0.01)


def test_the_larger_of_absolute_and_relative_tolerance_applies():
    assert within_tolerance(100.0, 104.0, "float", 5.0, 0.01)
    assert within_tolerance(1000.0, 1009.0, "float", 5.0, 0.01)
    assert not within_tolerance(1000.0, 1011.0, "float", 5.0, 0.01)


def test_relative_tolerance_of_a_zero_saved_value_is_zero():
    assert not within_tolerance(0.0, 1e-12, "float", 0.0, 0.5)
    assert within_tolerance(0.0, -0.0, "float", 0.0, 0.0)


def test_negative_values_use_the_magnitude_for_relative_tolerance():
    assert within_tolerance(-100.0, -100.9, "float", 0.0, 0.01)


def test_integers_compare_as_numbers_with_tolerance():
    assert within_tolerance(5, 6, "int", 1.0, 0.0)
    assert not within_tolerance(5, 7, "int", 1.0, 0.0)


def test_two_nans_count_as_equal():
    assert within_tolerance(NAN, NAN, "float")
    assert delta(NAN, NAN, "float") == 0.0


def test_nan_never_matches_a_number_whatever_the_tolerance():
    assert not within_tolerance(NAN, 1.0, "float", 1e300, 1.0)
    assert not within_tolerance(1.0, NAN, "float", 1e300, 1.0)
    assert math.isnan(delta(1.0, NAN, "float"))


def test_infinity_matches_only_the_same_infinity():
    assert within_tolerance(INF, INF, "float")
    assert not within_tolerance(INF, -INF, "float", 1e300, 1.0)
    assert not within_tolerance(INF, 1e308, "float", 1e300, 1.0)
    assert delta(INF, INF, "float") == 0.0


def test_missing_values_never_match():
    assert not within_tolerance(None, 1.0, "float", 10.0)
    assert not within_tolerance(1.0, None, "float", 10.0)
    assert not within_tolerance(None, None, "string")
    assert delta(None, 1.0, "float") is None


def test_strings_match_exactly_and_ignore_tolerance():
    assert within_tolerance("ON", "ON", "string", 1.0, 1.0)
    assert not within_tolerance("ON", "on", "string", 1.0, 1.0)
    assert not within_tolerance("ON", "ON ", "string")
    assert delta("ON", "OFF", "string") is None


def test_enums_match_by_index_exactly_and_ignore_tolerance():
    assert within_tolerance(2, 2, "enum")
    assert not within_tolerance(2, 3, "enum", 5.0, 1.0)
    assert delta(2, 3, "enum") is None


def test_arrays_match_element_by_element_within_tolerance():
    assert within_tolerance([1.0, 2.0, 3.0], [1.05, 1.95, 3.0], "float_array", 0.1)
    assert not within_tolerance([1.0, 2.0, 3.0], [1.0, 2.2, 3.0], "float_array", 0.1)


def test_relative_tolerance_applies_per_element():
    assert within_tolerance([100.0, 1.0], [101.0, 1.005], "float_array", 0.0, 0.01)
    assert not within_tolerance([100.0, 1.0], [101.0, 1.02], "float_array", 0.0, 0.01)


def test_arrays_of_different_length_never_match():
    assert not within_tolerance([1.0, 2.0], [1.0, 2.0, 0.0], "float_array", 1e9, 1.0)
    assert not within_tolerance([1, 2, 3], [1, 2], "int_array", 1e9)
    assert delta([1.0, 2.0], [1.0], "float_array") is None


def test_empty_arrays_match():
    assert within_tolerance([], [], "float_array")


def test_arrays_with_nan_elements_match_only_nan():
    assert within_tolerance([1.0, NAN], [1.0, NAN], "float_array")
    assert not within_tolerance([1.0, NAN], [1.0, 0.0], "float_array", 10.0)


def test_array_delta_is_element_wise():
    assert delta([1.0, 2.0], [1.5, 1.0], "float_array") == [0.5, -1.0]


def test_one_element_waveform_read_as_a_scalar_compares_with_its_saved_array():
    assert within_tolerance([3.0], 3.0, "float_array")


def test_number_delta_is_live_minus_saved():
    assert delta(10.0, 12.5, "float") == 2.5
    assert delta(7, 5, "int") == -2.0


def test_unknown_kind_is_an_error():
    with pytest.raises(ValueError, match="unknown value kind"):
        within_tolerance(1, 1, "complex")


def test_numbers_within_tolerance_rejects_none():
    assert not numbers_within_tolerance(None, 1.0)


def test_describe_difference_names_the_first_differing_element():
    assert describe_difference([1.0, 2.0, 3.0], [1.0, 9.0, 4.0], "float_array") == (
        "2 of 3 elements differ, first at [1]: 9.0 (expected 2.0)"
    )
    assert describe_difference([1.0], [1.0, 2.0], "float_array") == "length 2, expected 1"
    assert describe_difference(1.0, 2.0, "float") == "2.0 (expected 1.0)"
    assert describe_difference(None, 2.0, "float") == "no saved value"


@pytest.mark.parametrize(
    ("saved", "live", "kind"),
    [(1.0, [1.0, 2.0], "float"), (1.0, "text", "float"), ([1.0], 3.5, "float_array"), (2, "On", "enum")],
)
def test_a_live_value_of_another_shape_does_not_match(saved, live, kind):
    assert within_tolerance(saved, live, kind, 1.0, 0.0) is False


# Arrays of strings (DBF_STRING waveforms): element by element, exactly, whatever the tolerance.


def test_string_arrays_match_element_by_element_exactly():
    assert within_tolerance(["a", "b"], ["a", "b"], "string_array", 1e9, 1.0)
    assert not within_tolerance(["a", "b"], ["a", "B"], "string_array", 1e9, 1.0)
    assert not within_tolerance(["a", "b"], ["a", "b", ""], "string_array")
    assert not within_tolerance(["a", "b"], "a", "string_array")
    assert within_tolerance(["a"], "a", "string_array")  # a one-element waveform read as a scalar


def test_string_arrays_have_no_delta_and_name_the_first_differing_element():
    assert delta(["a", "b"], ["a", "c"], "string_array") is None
    assert describe_difference(["a", "b", "c"], ["a", "x", "y"], "string_array") == (
        "2 of 3 elements differ, first at [1]: 'x' (expected 'b')"
    )
    assert describe_difference(["a"], ["a", "b"], "string_array") == "length 2, expected 1"
    assert describe_difference(["a", "b"], ["a", "b"], "string_array") == "equal"
