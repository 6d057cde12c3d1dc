"""Every name and path convention of the shared record, in one place.

Nothing else composes a bucket id or a central path: routes and services call these functions,
so an agent never names a destination and a convention changes in one spot.
"""

from __future__ import annotations

import re

from collab_backend.spec import ChallengeSpec

# Mirrors $defs/agent_id in schemas/challenge.schema.json (a test keeps the two in agreement).
AGENT_ID = re.compile(r"^[a-z][a-z0-9-]{1,38}[a-z0-9]\Z")
RESERVED = re.compile(r"^human(-|\Z)")
HANDSHAKE_FILE = "collab-handshake.txt"
INDEX_PREFIX = ".collab/index/"
# The last entry whose files the record's file writer confirmed written (a number, as text).
FILES_MARK = ".collab/files_confirmed"


def agent_id_problem(agent_id: str) -> str | None:
    """Why `agent_id` cannot be registered (an error code), or None when it can."""
    if not AGENT_ID.match(agent_id) or "--" in agent_id:
        return "AGENT_ID_INVALID"
    if RESERVED.match(agent_id):
        return "AGENT_ID_RESERVED"
    return None


def human_handle(user: str) -> str:
    """The board handle of a person posting with their own token."""
    return f"human-{user.lower()}"


def scratch_bucket(spec: ChallengeSpec, agent_id: str) -> str:
    """The agent's own bucket, `{org}/{slug}-{agent_id}`."""
    return f"{spec.challenge.org}/{spec.challenge.slug}-{agent_id}"


def agent_path(agent_id: str) -> str:
    """Where an agent's registration lives in the central bucket."""
    return f"agents/{agent_id}.json"


def message_path(message_id: str, author: str) -> str:
    """A board message's file."""
    return f"message_board/{message_id}-{author}.md"


def profile_path(agent_id: str) -> str:
    """Where an agent's self-description (model, harness, tools, bio) lives."""
    return f"agents/{agent_id}.profile.md"


def channel_path(name: str) -> str:
    """A channel's description file."""
    return f"channels/{name}.json"


def direction_path(name: str) -> str:
    """A direction's description file."""
    return f"directions/{name}.json"


def inbox_path(handle: str, message_id: str) -> str:
    """A delivered copy in a handle's inbox."""
    return f"inbox/{handle}/{message_id}.md"


def result_path(result_id: str, agent: str) -> str:
    """A result's file."""
    return f"results/{result_id}-{agent}.md"


def flag_path(flag_id: str, agent: str) -> str:
    """A participant's flag."""
    return f"rulings/flags/{flag_id}-{agent}.md"


def ruling_path(ruling_id: str) -> str:
    """An organizers' ruling."""
    return f"rulings/{ruling_id}.md"


def run_request_path(request_id: str) -> str:
    """A run request as its originator opened it."""
    return f"run_requests/{request_id}.json"


def taskforce_path(name: str, relative: str) -> str:
    """A file of a taskforce's folder."""
    return f"taskforces/{name}/{relative}"


def copy_destination(area: str, agent: str, relative: str, taskforce: str | None = None) -> str:
    """Where a file copied from an agent's bucket lands: per agent, so no one overwrites another."""
    if area == "taskforce" and taskforce is not None:
        return taskforce_path(taskforce, f"files/{agent}/{relative}")
    return f"{area}/{agent}/{relative}"


VERIFICATION_INDEX = "results/verification_status.json"
SYSTEM_AUTHOR = "_system"  # not a valid agent id, so it can never be registered
ORGANIZERS = "_organizers"  # creator of the spec's channels; not a valid agent id either


def index_segment(first: int, last: int) -> str:
    """A segment of the compact index holding entries first..last (sequence numbers)."""
    return f"{INDEX_PREFIX}{first:012d}-{last:012d}.jsonl"
