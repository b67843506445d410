import pytest
from django.db import connection

from pvs.models import PV
from squirrel_site.paginators import EXACT_COUNT_BELOW, EstimatedCountPaginator


@pytest.fixture
def big_registry(db):
    PV.objects.bulk_create(PV(setpoint_address=f"SIM:P{i}") for i in range(EXACT_COUNT_BELOW + 500))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE pvs_pv")


def test_unfiltered_count_uses_the_estimate(big_registry, django_assert_num_queries):
    paginator = EstimatedCountPaginator(PV.objects.all(), 100)
    with django_assert_num_queries(1) as captured:
        count = paginator.count
    assert "reltuples" in captured.captured_queries[0]["sql"]
    assert abs(count - (EXACT_COUNT_BELOW + 500)) < 100


def test_filtered_count_is_exact(big_registry):
    assert EstimatedCountPaginator(PV.objects.filter(setpoint_address__startswith="SIM:P1"), 100).count == 1611


def test_small_tables_are_counted_exactly(db):
    PV.objects.create(setpoint_address="SIM:ONE")
    with connection.cursor() as cursor:
        # ANALYZE updates pg_class in place (not rolled back with a test), so refresh it here.
        cursor.execute("ANALYZE pvs_pv")
    assert EstimatedCountPaginator(PV.objects.all(), 100).count == 1
