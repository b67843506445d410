"""The Celery application that carries the jobs' messages (jobs.outbox sends them, the workers run
them), configured from Django's CELERY_* settings.

Each process gets it through its entry point, squirrel_site/celery.py (`celery -A squirrel_site`),
which adds the apps' tasks and the worker's steps; the jobs app itself knows no other app.
"""

from celery import Celery

app = Celery("squirrel")
app.config_from_object("django.conf:settings", namespace="CELERY")
