"""Stands in for the AWS SNS bucket notification of a real deployment.

Reads the JSON lines `owi store` prints for each completed upload
({"bucket": ..., "key": ...}) on stdin and, for each object under
`{user_id}/raw/`, queues the Celery task the server's SNS endpoint would
queue: process_aws_upload(bucket, key, user_id). The real endpoint checks an
AWS signature on the notification, so it cannot be called offline.

Run with the backend's virtualenv, PYTHONPATH set to the backend folder and
the same settings as the Celery worker (it needs the Redis broker).
"""

import json
import logging
import os
import sys
from pathlib import Path

from app.integrations.celery import create_celery
from app.integrations.celery.tasks.process_aws_upload_task import process_aws_upload

log = logging.getLogger("notify")

# While this file exists, nothing is handed over (no bucket notifications).
OFF = Path(os.environ.get("OWI_NOTIFICATIONS_OFF", "/nonexistent"))


def handle(line: str) -> None:
    try:
        notice = json.loads(line)
        bucket, key = notice["bucket"], notice["key"]
    except (ValueError, KeyError, TypeError):
        # The store's own lines (its banner) arrive on the same pipe.
        log.info("store: %s", line)
        return
    # The key exactly as stored: the server names it {user_id}/raw/{filename}.
    user_id, sep, _ = key.partition("/raw/")
    if not sep or not user_id or "/" in user_id:
        log.info("ignored %s/%s: not under {user_id}/raw/", bucket, key)
        return
    if OFF.exists():
        log.info("notifications off: %s/%s is kept and not imported", bucket, key)
        return
    result = process_aws_upload.delay(bucket, key, user_id)
    log.info("queued process_aws_upload(%r, %r, %r) as task %s", bucket, key, user_id, result.id)


def main() -> None:
    logging.basicConfig(
        stream=sys.stdout,
        level=logging.INFO,
        format="[%(asctime)s - %(name)s] (%(levelname)s) %(message)s",
    )
    # Configures the broker from the settings, as the worker does.
    create_celery()
    log.info("ready")
    while line := sys.stdin.readline():
        line = line.strip()
        if not line:
            continue
        try:
            handle(line)
        except Exception:
            # One bad notice (or a broker hiccup) must not stop the next ones.
            log.exception("could not hand over %s", line)
    log.info("the store closed its output; stopping")


if __name__ == "__main__":
    main()
