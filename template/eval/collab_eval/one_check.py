"""One cheap check in a process of its own, so that a check that hangs can be stopped by its PID.

Reads `{type, filename, frontmatter, body, spec}` as JSON on stdin and writes the type's
`CheckResult` as `{verdict, reason}` on stdout. The type is the collab's own: the registered one
(`provision.challenge_types.load_type`, where the kit is installed), else the collab's
`challenge_<type>` package beside this one (a Space holds no installed kit).
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any


def check(request: dict[str, Any]) -> dict[str, Any]:
    from provision.challenge_types import ChallengeType
    from provision.errors import ChallengeTypeError
    from provision.spec.model import ChallengeSpec

    name = str(request["type"])
    try:
        from provision.challenge_types import load_type

        kind = load_type(name)
    except ChallengeTypeError:
        found = getattr(importlib.import_module(f"challenge_{name}"), "challenge_type", None)
        if not isinstance(found, ChallengeType):
            raise
        kind = found
    spec = ChallengeSpec.model_validate(request["spec"])
    result = kind.cheap_check(str(request["filename"]), request["frontmatter"], str(request["body"]), spec)
    return {"verdict": result.verdict, "reason": result.reason}


def main() -> None:
    answer = check(json.loads(sys.stdin.buffer.read()))
    sys.stdout.write(json.dumps(answer) + "\n")


if __name__ == "__main__":
    main()
