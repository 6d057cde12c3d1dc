"""Run the real `batch_bucket_files` (adds go through hf_xet) against a scripted Hub, in a fresh process.

hf_xet reads its settings once per process, when the first transfer starts, so the contract test
runs its Xet cases here: `python xet_probe.py ENDPOINT BUCKET...` bounds the waits with the kit's
`install_timeouts`, writes one small file to each bucket and prints, per bucket, the type and the
message of what was raised, as JSON.
"""

from __future__ import annotations

import json
import sys

from huggingface_hub import HfApi

from provision.hub.failures import install_timeouts


def main(endpoint: str, buckets: list[str]) -> None:
    install_timeouts(1.0, 1.0)
    api = HfApi(endpoint=endpoint, token="hf_contract_token")  # noqa: S106  # never checked
    outcomes = {}
    for bucket in buckets:
        try:
            api.batch_bucket_files(bucket, add=[(b"hello", "a.txt")])
        except Exception as exc:
            outcomes[bucket] = {"type": f"{type(exc).__module__}.{type(exc).__qualname__}", "message": str(exc)}
        else:
            outcomes[bucket] = {"type": None, "message": ""}
    print(json.dumps(outcomes))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
