"""The names the kit gives what it creates on the Hub, which every layer reads the same way.

The tool's own name, the ownership marks built from it (a Space variable, a file in a bucket)
and the address a Space serves at. The backend repeats the mark (`collab_backend/jobs/base.py`
labels Jobs with it), and a test holds the two equal. Imports nothing from the kit.
"""

from __future__ import annotations

import re

TOOL = "agent-collab-kit"
#: The Space variable that marks a Space as this collab's (`marker_value`).
MARKER_KEY = "COLLAB_MANAGED_BY"
#: The file that marks a bucket as this collab's: `{"managed_by": TOOL, "collab": "org/slug"}`.
BUCKET_MARKER_PATH = ".collab/deployment.json"


def marker_value(collab: str) -> str:
    """The ownership mark's value: the tool and the collab it belongs to."""
    return f"{TOOL} {collab}"


def space_url(space_id: str) -> str:
    """The address a Space serves at: `https://{owner}-{name}.hf.space`, lowercase, '.' and '_' as '-'."""
    return "https://" + re.sub(r"[/._]", "-", space_id.lower()) + ".hf.space"
