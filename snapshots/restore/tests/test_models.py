import pytest

from pvs.models import PV
from pvs.services import delete_pvs
from snapshots.models import Restore, RestoreItem, RestorePreview, Snapshot, SnapshotMode, ValueType
from squirrel_site.audit import AuditVia


@pytest.mark.django_db
def test_restore_items_go_with_their_restore_and_lose_deleted_pvs(admin_user):
    pv, other = PV.objects.create(setpoint_address="SIM:A"), PV.objects.create(setpoint_address="SIM:B")
    snapshot = Snapshot.objects.create(title="t", created_by=admin_user, mode=SnapshotMode.CACHE)
    preview = RestorePreview.objects.create(
        snapshot=snapshot, created_by=admin_user, expires_at="2030-01-01T00:00Z", live_source="cache"
    )
    restore = Restore.objects.create(preview=preview, snapshot=snapshot, created_by=admin_user)
    item = RestoreItem.objects.create(restore=restore, pv=pv, pv_name="SIM:A", value_type=ValueType.FLOAT)
    RestoreItem.objects.create(restore=restore, pv=other, pv_name="SIM:B", value_type=ValueType.FLOAT)

    delete_pvs(PV.objects.filter(pk=pv.pk), actor=admin_user, via=AuditVia.API)
    item.refresh_from_db()
    assert item.pv_id is None and item.pv_name == "SIM:A"

    restore.delete()
    assert not RestoreItem.objects.exists()
