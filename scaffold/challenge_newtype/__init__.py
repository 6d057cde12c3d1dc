"""The newtype challenge: a stand-in task that shows every hook working; replace it with yours.

`collab new-type` wrote this package. Each file says what it is for; CONTRIBUTING.md has the
checklist and docs/challenge-types.md describes every hook.
"""

from pathlib import Path

from challenge_newtype.check import cheap_check
from challenge_newtype.demo import demo
from provision.challenge_types import ChallengeType

challenge_type = ChallengeType(
    name="newtype",
    title="New challenge type",
    # Copier lists the type as "newtype: <summary>"; copier.yml's choice label must match it.
    summary="predict the public targets as closely as possible (a stand-in task: replace it)",
    package_dir=Path(__file__).parent,
    cheap_check=cheap_check,
    demo=demo,  # the local demo's words and result fields (demo.py)
)
