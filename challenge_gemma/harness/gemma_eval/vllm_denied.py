"""What a submission may not set in vLLM 0.33, and why: the denylist, read from `denied.json`.

The tables are data (`denied.json`, shipped beside this module and seeded with the harness), so
that the organizers' rulings extend them without a code change: the backend shows the same file
as the challenge type's standing rules, in the rulings' predicate vocabulary (`names` under an
object are `{"field": "<object>.<name>", "op": "set"}`, denied `values` of a field are `equals`).

Together with the allowlist and the evaluator's own settings (`vllm_args.py`), these tables cover
every field of vLLM 0.33's `EngineArgs` and `LLM`, of `SpeculativeConfig`, of the compilation
and attention configs, and every value of the literal types the allowlist draws from, as read
from the vLLM wheel (`challenge_gemma/vllm_surface/surface.json`); a test holds them to that
snapshot, so each name here exists in vLLM 0.33 and nothing there is left unclassified. A refusal
always carries its reason, because "not on the allowlist" alone would not tell a participant why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DATA = Path(__file__).with_name("denied.json")
#: The reason of every deprecated alias of the `mtp` method (vllm_args.py resolves them as vLLM does).
MTP_ALIAS = "a deprecated alias of 'mtp' in vLLM 0.33; write 'mtp'"


def load(path: Path = DATA) -> dict[str, Any]:
    """The denylist document: `names` (object path -> name -> reason), `values` (value set -> fields, denied)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("format") != "denylist" or doc.get("version") != 1:
        raise ValueError(f"{path.name}: not a denylist (format 'denylist', version 1)")
    return doc


_DOC = load()
_NAMES: dict[str, dict[str, str]] = _DOC["names"]

# Engine arguments (fields of EngineArgs, and of LLM's own signature).
DENIED: dict[str, str] = _NAMES["engine_args"]
# Keys of compilation_config (fields of CompilationConfig a caller can set).
COMPILATION_DENIED: dict[str, str] = _NAMES["engine_args.compilation_config"]
# Keys of attention_config (fields of AttentionConfig).
ATTENTION_DENIED: dict[str, str] = _NAMES["engine_args.attention_config"]
# Keys of speculative_config (fields of SpeculativeConfig).
SPECULATIVE_DENIED: dict[str, str] = _NAMES["speculative_config"]
# Values refused inside an allowed setting, by the vLLM value set they belong to (surface.json's `values`).
DENIED_VALUES: dict[str, dict[str, str]] = {key: entry["denied"] for key, entry in _DOC["values"].items()}
# The fields (dotted paths in submission.json) that take a value of each set, and the objects keyed by one.
VALUE_FIELDS: dict[str, list[str]] = {key: entry["fields"] for key, entry in _DOC["values"].items()}
VALUE_KEYS_OF: dict[str, list[str]] = {key: entry.get("keys_of", []) for key, entry in _DOC["values"].items()}
