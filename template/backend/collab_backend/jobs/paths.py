"""Where a job's files go, composed here only (the conventions of `naming.py`, for jobs).

Central bucket, written by the backend: `jobs/{id}/job.json` at launch, `jobs/{id}/outcome.json`
and the validated `jobs/{id}/summary.json` at the end, `jobs/{id}/log.txt` (the log's tail).
Audit bucket (the admin org's, which participants never read): `jobs/{id}/state/`, the folder a
Hub job writes into; the backend reads `summary.json` from there and publishes it once checked.
"""

from __future__ import annotations

import re

JOB_ID_PATTERN = "^job-[0-9]{13,16}-[0-9]{1,12}$"  # for request validation
JOB_ID = re.compile(JOB_ID_PATTERN[:-1] + r"\Z")


def job_id(ts: float, seq: int) -> str:
    """A job's id: sortable by launch time, unique by the record's sequence number."""
    return f"job-{int(ts * 1000):013d}-{seq}"


def job_path(job: str, name: str) -> str:
    """A file of the job's folder in the central bucket."""
    return f"jobs/{job}/{name}"


def state_folder(job: str) -> str:
    """The folder of the audit bucket that a Hub job mounts read-write as its state folder."""
    return f"jobs/{job}/state"
