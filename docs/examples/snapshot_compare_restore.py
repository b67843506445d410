#!/usr/bin/env python3
"""Take a snapshot, compare a reference snapshot with the live values, restore one tag's PVs.

    export SQUIRREL_URL=https://squirrel.example.org SQUIRREL_TOKEN=sqt_...
    python snapshot_compare_restore.py --tag Subsystem/Timing [--reference 42] [--dry-run]

1. Takes a snapshot of every PV, the state before anything is written (its id is printed), and
   waits for the snapshot job.
2. Compares the reference snapshot (`--reference`; the snapshot just taken if not given) with the
   live values: PVs per comparison status, and the first PVs that differ.
3. Restores the PVs of the tag `--tag` (its id, its name, or "group/name" when several tag groups
   have a tag of that name) to the reference: makes a preview of those PVs, executes it by its id,
   waits for the restore job and prints every PV's result. `--dry-run` stops after the preview.

Exit status: 0 when every PV was restored (or there was nothing to write), 1 when the restore
finished with PVs not restored, 2 when the API answered with an error (printed as it came) or
a job failed. Needs Python 3.9+ and `requests`.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import requests

JOB_TIMEOUT = 600.0  # seconds; a 50,000-PV snapshot or restore takes a few
POLL_INTERVAL = 0.5
PAGE_SIZE = 1000


class ApiError(Exception):
    """The API answered with an error status; the message holds the request and the body."""


class Squirrel:
    """The few calls this script needs, authenticated with a token."""

    def __init__(self, url: str, token: str):
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({"Authorization": f"Token {token}", "Accept": "application/json"})

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        """The response to `method path`; ApiError with the body as it came for any error status."""
        url = path if path.startswith("http") else f"{self.url}{path}"
        response = self.session.request(method, url, timeout=60, **kwargs)
        if response.status_code >= 400:
            # Print whatever the server said: the body's shape is not part of this script's contract.
            raise ApiError(f"{method} {url} answered {response.status_code}:\n{response.text}")
        return response

    def get(self, path: str, **params) -> dict:
        return self.call("GET", path, params=params).json()

    def post(self, path: str, body: dict | None = None) -> requests.Response:
        return self.call("POST", path, json=body or {})

    def wait_for_job(self, job_id: int, what: str) -> dict:
        """Poll the job until it ends; its final state. A failed or expired job is an ApiError."""
        deadline = time.monotonic() + JOB_TIMEOUT
        while True:
            job = self.get(f"/api/v1/jobs/{job_id}/")
            if job["status"] == "succeeded":
                return job
            if job["status"] == "failed":
                raise ApiError(f"{what} (job {job_id}) failed: {job.get('error') or job}")
            if job["status"] == "expired":  # not started in time: nothing was done
                raise ApiError(f"{what} (job {job_id}): {job['message']}")
            if time.monotonic() > deadline:
                raise ApiError(f"{what} (job {job_id}) did not finish in {JOB_TIMEOUT:g} s: {job}")
            time.sleep(POLL_INTERVAL)

    def pages(self, path: str, **params):
        """Every result of a cursor-paginated list, page after page."""
        page = self.get(path, **params)
        yield from page["results"]
        while page.get("next"):
            page = self.get(page["next"])
            yield from page["results"]


def find_tag(api: Squirrel, tag: str) -> int:
    """The id of the tag given by id, name or "group/name"; ApiError unless exactly one matches."""
    if tag.isdigit():
        return int(tag)
    group, _, name = tag.rpartition("/")
    found = api.get("/api/v1/tags/", name=name, **({"group_name": group} if group else {}))["results"]
    if len(found) != 1:
        matches = ", ".join(f"{t['group_name']}/{t['name']}" for t in found) or "none"
        raise ApiError(f"Tag {tag!r} must name exactly one tag; matches: {matches}.")
    return found[0]["id"]


def take_snapshot(api: Squirrel, title: str) -> int:
    job = api.post("/api/v1/snapshots/", {"title": title, "comment": "Taken by snapshot_compare_restore.py"}).json()
    snapshot_id = api.wait_for_job(job["id"], "The snapshot")["result_id"]
    snapshot = api.get(f"/api/v1/snapshots/{snapshot_id}/")
    print(f"Snapshot {snapshot_id} taken: {snapshot['pv_count']} PVs, {snapshot['disconnected_count']} disconnected.")
    return snapshot_id


def compare_with_live(api: Squirrel, snapshot_id: int, show: int) -> None:
    page = api.get(
        "/api/v1/compare/", a=snapshot_id, b="live", differences_only="true", sort="status", page_size=max(show, 1)
    )
    counts = ", ".join(f"{status} {n}" for status, n in page["counts"].items() if n)
    print(f"Snapshot {snapshot_id} against the live values: {counts or 'no PVs'}.")
    for row in page["results"][:show]:
        saved, live = (side["display"] if side else "-" for side in (row["a"], row["b"]))
        print(f"  {row['pv_name']:<40} {row['status']:<17} saved {saved:<16} live {live}")


def make_preview(api: Squirrel, snapshot_id: int, tag_id: int) -> dict:
    """A preview of the tag's PVs: made at once from the live cache (201) or by a worker (202)."""
    response = api.post("/api/v1/restore-previews/", {"snapshot": snapshot_id, "selection": {"tag": [tag_id]}})
    if response.status_code == 202:
        job = api.wait_for_job(response.json()["id"], "The preview")
        return api.get(f"/api/v1/restore-previews/{job['result_id']}/")
    return response.json()


def restore(api: Squirrel, preview: dict) -> dict:
    job = api.post(f"/api/v1/restore-previews/{preview['id']}/execute/").json()
    restore_id = api.wait_for_job(job["id"], "The restore")["result_id"]
    return api.get(f"/api/v1/restores/{restore_id}/")


def print_results(api: Squirrel, restored: dict) -> None:
    for item in api.pages(f"/api/v1/restores/{restored['id']}/items/", page_size=PAGE_SIZE):
        print(f"  {item['pv_name']:<40} {item['status']:<16} target {item['target']!r} readback {item['readback']!r}")
    summary = ", ".join(f"{status} {n}" for status, n in sorted(restored["summary"].items()))
    print(f"Restore {restored['id']}: {restored['status']} ({summary or 'nothing written'}).")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", required=True, help='the tag whose PVs are restored: id, name or "group/name"')
    parser.add_argument("--reference", type=int, help="id of the snapshot to restore (default: the new one)")
    parser.add_argument("--title", default=f"Before restore, {time.strftime('%Y-%m-%d %H:%M')}")
    parser.add_argument("--show", type=int, default=20, help="how many differing PVs to list")
    parser.add_argument("--dry-run", action="store_true", help="stop after the preview")
    args = parser.parse_args()
    url, token = os.environ.get("SQUIRREL_URL"), os.environ.get("SQUIRREL_TOKEN")
    if not url or not token:
        parser.error("set SQUIRREL_URL (e.g. https://squirrel.example.org) and SQUIRREL_TOKEN (sqt_...)")
    api = Squirrel(url, token)
    try:
        tag_id = find_tag(api, args.tag)
        taken = take_snapshot(api, args.title)
        reference = args.reference or taken
        compare_with_live(api, reference, args.show)
        preview = make_preview(api, reference, tag_id)
        print(
            f"Preview {preview['id']} of tag {args.tag}: {preview['write_count']} to write, "
            f"{preview['unchanged_count']} unchanged, {preview['read_only_count']} read-only, "
            f"{preview['disconnected_count']} disconnected, "
            f"{preview['no_write_access_count']} without write access, "
            f"{preview['not_writable_count']} not writable (pvAccess structures)."
        )
        if args.dry_run:
            return 0
        restored = restore(api, preview)
        print_results(api, restored)
    except (ApiError, requests.RequestException) as exc:
        print(exc, file=sys.stderr)
        return 2
    return 0 if restored["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
