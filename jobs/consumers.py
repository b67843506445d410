"""WebSocket /ws/jobs/<id>/: the state of one job, now and at every change."""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from jobs.models import Job
from jobs.payloads import job_group, job_state
from squirrel_site.ws_security import SessionWatch


class JobProgressConsumer(AsyncJsonWebsocketConsumer):
    """Follows one job. Only users with jobs.view_job to whom the job is visible
    (Job.objects.visible_to) may; other handshakes are refused (HTTP 403), and an open socket is
    closed once its user logs out, is deactivated or loses the permission (SessionWatch)."""

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()
            return
        self.job_id = int(self.scope["url_route"]["kwargs"]["job_id"])
        state = await self._visible_state(user)
        if state is None:
            await self.close()
            return
        await self.channel_layer.group_add(job_group(self.job_id), self.channel_name)
        self.watch = SessionWatch(self, "jobs.view_job")
        await self.accept()
        self.watch.start()
        await self.send_json(state)

    async def disconnect(self, code):
        if hasattr(self, "watch"):
            await self.watch.stop()
        if hasattr(self, "job_id"):
            await self.channel_layer.group_discard(job_group(self.job_id), self.channel_name)

    async def job_state(self, event):
        await self.send_json(event["state"])

    @database_sync_to_async
    def _visible_state(self, user):
        if not user.has_perm("jobs.view_job"):
            return None
        job = Job.objects.visible_to(user).filter(pk=self.job_id).first()
        return job_state(job) if job is not None else None
