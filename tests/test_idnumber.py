"""GB 11643 resident ID numbers: structure, birth date, ISO 7064 MOD 11-2 check character, masking."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, strategies as st

from aidgraph.core.graph import idnumber

# A published specimen number: 11010519491231002X (Beijing Chaoyang, born 1949-12-31, female).
SPECIMEN = "11010519491231002X"


def test_specimen_is_valid_and_derives_sex_and_birth():
    rid = idnumber.parse(SPECIMEN)
    assert rid.birth_date == dt.date(1949, 12, 31)
    assert rid.sex == "FEMALE"
    assert rid.address_code == "110105"


def test_lower_case_x_is_normalised():
    assert idnumber.parse(SPECIMEN.lower()).number == SPECIMEN


@pytest.mark.parametrize("value, reason", [
    ("1101051949123100", "18 characters"),
    ("11010519491231002X1", "18 characters"),
    ("1101051949123100XX", "17 digits"),
    ("110105194902300021", "impossible birth date"),
    ("110105194913310021", "impossible birth date"),
    ("110105194912310021", "check character"),
])
def test_malformed_numbers_name_the_problem(value, reason):
    with pytest.raises(idnumber.InvalidIdNumber, match=reason):
        idnumber.parse(value)


def test_future_birth_date_is_rejected():
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    with pytest.raises(idnumber.InvalidIdNumber, match="outside"):
        idnumber.parse(idnumber.make("440106", tomorrow, 1))


def test_unknown_address_codes_are_accepted():
    assert idnumber.parse(idnumber.make("999999", dt.date(1980, 1, 1), 1)).address_code == "999999"


@given(st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2020, 12, 31)), st.integers(0, 999))
def test_made_numbers_round_trip(birth, sequence):
    number = idnumber.make("440106", birth, sequence)
    rid = idnumber.parse(number)
    assert rid.birth_date == birth
    assert rid.sex == ("MALE" if sequence % 2 else "FEMALE")
    # changing any one of the first 17 digits breaks the check character
    i = sequence % 17
    tampered = number[:i] + str((int(number[i]) + 1) % 10) + number[i + 1:]
    with pytest.raises(idnumber.InvalidIdNumber):
        idnumber.parse(tampered)


def test_masking_matches_the_contract():
    assert idnumber.mask("44010619700517123X") == "440106********123X"
    assert idnumber.mask_phone("13812341234") == "138****1234"
