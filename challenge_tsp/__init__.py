"""The tsp challenge: the shortest round trip through 1,000 fixed cities, scored exactly on a CPU.

The small second challenge type: it proves the plug-in contract is not Gemma-shaped. Lower is
better, the score is an exact integer (no noise, no private set), claims are verified in the eval
Space by recomputing them, and jobs are off unless the organizers turn them on.
"""

from pathlib import Path

from challenge_tsp.check import cheap_check
from challenge_tsp.demo import demo
from provision.challenge_types import ChallengeType

challenge_type = ChallengeType(
    name="tsp",
    title="Shortest tour through 1,000 cities",
    summary="shortest round trip through 1,000 fixed cities, re-scored exactly on a CPU",
    package_dir=Path(__file__).parent,
    cheap_check=cheap_check,
    demo=demo,
)
