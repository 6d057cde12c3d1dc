"""Read vLLM's argument surface from its wheel, without installing or importing vLLM.

The Gemma harness passes a submission's settings to `vllm.LLM(...)` and reads vLLM's outputs, so
its rules must name only what the pinned vLLM really has. This script opens the wheel as a zip
file, parses the Python files it needs with `ast`, and writes the facts the rules rely on to
`surface.json` beside it: the fields of `EngineArgs`, `SpeculativeConfig`, the compilation and
attention configs, `SamplingParams` and the output classes; the literal values of the settings the
rules check (dtypes, load formats, quantization and speculative methods, attention backends...);
and the start-up rules of vLLM's own that the harness depends on. These are facts about vLLM, not
its code. `tests/challenges/gemma/test_gemma_vllm_surface.py` holds the harness against them.

Run it through nox, which downloads the pinned wheel first (`nox -s vllm_surface`), or directly:

    python challenge_gemma/vllm_surface/vllm_surface.py vllm-0.33.0-*.whl --out surface.json

A class, type or rule that moved in a new vLLM stops the script with what it looked for and where.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = "vllm-surface"
HERE = Path(__file__).resolve().parent
OUT = HERE / "surface.json"
SPEC = HERE.parent / "copier" / "spec.jinja"
_IMAGE = re.compile(r'set jobs_image = "vllm/vllm-openai:v(?P<version>[0-9][0-9A-Za-z.+-]*)"')

# (module, class) whose fields are read; dataclass-style annotated class attributes.
FIELDS: dict[str, tuple[str, str]] = {
    "EngineArgs": ("vllm/engine/arg_utils.py", "EngineArgs"),
    "SpeculativeConfig": ("vllm/config/speculative.py", "SpeculativeConfig"),
    "CompilationConfig": ("vllm/config/compilation.py", "CompilationConfig"),
    "AttentionConfig": ("vllm/config/attention.py", "AttentionConfig"),
    "SamplingParams": ("vllm/sampling_params.py", "SamplingParams"),
    "TokensPrompt": ("vllm/inputs/llm.py", "TokensPrompt"),
    "CompletionOutput": ("vllm/outputs.py", "CompletionOutput"),
    "RequestStateStats": ("vllm/v1/metrics/stats.py", "RequestStateStats"),
    "RequestSpecDecodeMetrics": ("vllm/v1/metrics/stats.py", "RequestSpecDecodeMetrics"),
    "Logprob": ("vllm/logprobs.py", "Logprob"),
}

# (module, class, method): keyword parameters of a call the harness makes or an object it reads.
PARAMETERS: dict[str, tuple[str, str, str]] = {
    "LLM": ("vllm/entrypoints/llm.py", "LLM", "__init__"),
    "LLM.generate": ("vllm/entrypoints/llm.py", "LLM", "generate"),
    "RequestOutput": ("vllm/outputs.py", "RequestOutput", "__init__"),
}

# Literal type aliases (module, name), nested aliases resolved.
LITERALS: dict[str, tuple[str, str]] = {
    "dtype": ("vllm/config/model.py", "ModelDType"),
    "logprobs_mode": ("vllm/config/model.py", "LogprobsMode"),
    "model_impl": ("vllm/config/model.py", "ModelImpl"),
    "kv_cache_dtype": ("vllm/config/cache.py", "CacheDType"),
    "quantization": ("vllm/model_executor/layers/quantization/__init__.py", "QuantizationMethods"),
    "speculative_method": ("vllm/config/speculative.py", "SpeculativeMethod"),
    "mtp_model_types": ("vllm/config/speculative.py", "MTPModelTypes"),
    "rejection_sample_method": ("vllm/config/speculative.py", "RejectionSampleMethod"),
    "draft_sample_method": ("vllm/config/speculative.py", "DraftSampleMethod"),
    "performance_mode": ("vllm/config/vllm.py", "PerformanceMode"),
    "linear_backend": ("vllm/config/kernel.py", "LinearBackend"),
}

# Literal values written inline in one field's annotation (module, class, field).
FIELD_LITERALS: dict[str, tuple[str, str, str]] = {
    "per_request_spec_decode_metrics": ("vllm/engine/arg_utils.py", "EngineArgs", "per_request_spec_decode_metrics"),
    "flash_attn_version": ("vllm/config/attention.py", "AttentionConfig", "flash_attn_version"),
    "draft_lm_head_quantization": ("vllm/config/speculative.py", "SpeculativeConfig", "draft_lm_head_quantization"),
}

# Keys of a module-level dict (module, name): the loader registry is what `load_format` accepts.
REGISTRIES: dict[str, tuple[str, str]] = {
    "load_format": ("vllm/model_executor/model_loader/__init__.py", "_LOAD_FORMAT_TO_MODEL_LOADER"),
    "exports": ("vllm/__init__.py", "MODULE_ATTRS"),
}

# Enums (module, class, what to keep): member `names`, or member `values` where settings take the value.
ENUMS: dict[str, tuple[str, str, str]] = {
    "attention_backend": ("vllm/v1/attention/backends/registry.py", "AttentionBackendEnum", "names"),
    "cudagraph_mode": ("vllm/config/compilation.py", "CUDAGraphMode", "names"),
    "compilation_mode": ("vllm/config/compilation.py", "CompilationMode", "values"),
    "optimization_level": ("vllm/config/vllm.py", "OptimizationLevel", "values"),
    "kv_cache_spec_kind": ("vllm/v1/kv_cache_interface.py", "KVCacheSpecKind", "values"),
}


@dataclass(frozen=True)
class Rule:
    """A start-up rule of vLLM's that the harness depends on, found by the code that enforces it.

    Attributes:
        module: The file that holds it.
        scope: `Class.method` whose body holds it.
        fragments: Every one of these occurs in the `if` test, as `ast.unparse` writes it (single quotes).
        effect: `raise` (the body raises) or `assign` (the body assigns).
        meaning: What the rule means for the harness.
    """

    module: str
    scope: str
    fragments: tuple[str, ...]
    effect: str
    meaning: str


RULES: dict[str, Rule] = {
    "per_request_spec_decode_metrics_needs_speculative_config": Rule(
        "vllm/config/vllm.py",
        "VllmConfig.__post_init__",
        ("per_request_spec_decode_metrics != 'none'", "speculative_config is None"),
        "raise",
        "per_request_spec_decode_metrics other than 'none' without a speculative_config stops vLLM at start",
    ),
    "llm_disables_log_stats_unless_passed": Rule(
        "vllm/entrypoints/llm.py",
        "LLM.__init__",
        ("'disable_log_stats' not in kwargs",),
        "assign",
        "LLM turns per-request statistics off unless disable_log_stats is passed",
    ),
}


class SurfaceError(Exception):
    """Something the snapshot needs is not where it was looked for."""


class Wheel:
    """The Python sources of a wheel, parsed on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._zip = zipfile.ZipFile(path)
        self._trees: dict[str, ast.Module] = {}

    def tree(self, module: str) -> ast.Module:
        if module not in self._trees:
            try:
                source = self._zip.read(module).decode("utf-8")
            except KeyError:
                raise SurfaceError(f"{module}: not in {self.path.name}") from None
            self._trees[module] = ast.parse(source, filename=module)
        return self._trees[module]

    def version(self) -> str:
        for name in self._zip.namelist():
            if name.endswith(".dist-info/METADATA"):
                for line in self._zip.read(name).decode("utf-8").splitlines():
                    if line.startswith("Version: "):
                        return line.removeprefix("Version: ").strip()
        raise SurfaceError(f"{self.path.name}: no Version in its .dist-info/METADATA")


def find_class(tree: ast.Module, name: str, module: str) -> ast.ClassDef:
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node
    raise SurfaceError(f"{module}: class {name} not found")


def find_method(cls: ast.ClassDef, name: str, module: str) -> ast.FunctionDef:
    for node in cls.body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return node
    raise SurfaceError(f"{module}: {cls.name}.{name} not found")


def _is_classvar(annotation: ast.expr) -> bool:
    text = ast.unparse(annotation)
    return text.startswith(("ClassVar", "typing.ClassVar"))


def _not_init(value: ast.expr | None) -> bool:
    """`field(..., init=False)`: a field no caller can set."""
    return (
        isinstance(value, ast.Call)
        and ast.unparse(value.func).split(".")[-1] == "field"
        and any(
            k.arg == "init" and isinstance(k.value, ast.Constant) and k.value.value is False for k in value.keywords
        )
    )


def class_fields(wheel: Wheel, module: str, name: str) -> list[str]:
    """The settable fields of a dataclass-like class, in source order."""
    cls = find_class(wheel.tree(module), name, module)
    fields = [
        node.target.id
        for node in cls.body
        if isinstance(node, ast.AnnAssign)
        and isinstance(node.target, ast.Name)
        and not _is_classvar(node.annotation)
        and not _not_init(node.value)
    ]
    if not fields:
        raise SurfaceError(f"{module}: class {name} has no annotated fields")
    return fields


def keyword_parameters(wheel: Wheel, module: str, name: str, method: str) -> list[str]:
    """Parameters of a method that a caller can pass by keyword (self and *args/**kwargs left out)."""
    function = find_method(find_class(wheel.tree(module), name, module), method, module)
    arguments = function.args
    return [a.arg for a in [*arguments.args[1:], *arguments.kwonlyargs]]


def _literal_items(node: ast.expr, aliases: dict[str, ast.expr], module: str, seen: frozenset[str]) -> list[Any]:
    """The values of a `Literal[...]`, following aliases of other literals in the same module."""
    if isinstance(node, ast.Subscript) and ast.unparse(node.value).split(".")[-1] == "Literal":
        items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        values: list[Any] = []
        for item in items:
            values += _literal_items(item, aliases, module, seen)
        return values
    if isinstance(node, ast.Constant):
        return [node.value]
    if isinstance(node, ast.Name) and node.id in aliases and node.id not in seen:
        return _literal_items(aliases[node.id], aliases, module, seen | {node.id})
    raise SurfaceError(f"{module}: cannot read {ast.unparse(node)!r} as literal values")


def _module_assignments(tree: ast.Module) -> dict[str, ast.expr]:
    found: dict[str, ast.expr] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            found[node.targets[0].id] = node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            found[node.target.id] = node.value
    return found


def literal_values(wheel: Wheel, module: str, name: str) -> list[Any]:
    """The values of a module-level `Name = Literal[...]`."""
    aliases = _module_assignments(wheel.tree(module))
    if name not in aliases:
        raise SurfaceError(f"{module}: {name} not found")
    return _dedupe(_literal_items(aliases[name], aliases, module, frozenset({name})))


def field_literal(wheel: Wheel, module: str, name: str, field: str) -> list[Any]:
    """The `Literal[...]` values written in one field's annotation (`None` and other types skipped)."""
    cls = find_class(wheel.tree(module), name, module)
    for node in cls.body:
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.target.id == field:
            literals = [
                sub
                for sub in ast.walk(node.annotation)
                if isinstance(sub, ast.Subscript) and ast.unparse(sub.value).split(".")[-1] == "Literal"
            ]
            if not literals:
                raise SurfaceError(f"{module}: {name}.{field} has no Literal in its annotation")
            return _dedupe([v for lit in literals for v in _literal_items(lit, {}, module, frozenset())])
    raise SurfaceError(f"{module}: {name}.{field} not found")


def dict_keys(wheel: Wheel, module: str, name: str) -> list[str]:
    """The string keys of a module-level dict literal."""
    value = _module_assignments(wheel.tree(module)).get(name)
    if not isinstance(value, ast.Dict):
        raise SurfaceError(f"{module}: {name} is not a dict literal")
    return [k.value for k in value.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]


def enum_members(wheel: Wheel, module: str, name: str, keep: str = "names") -> list[Any]:
    """Member names of an enum class, or their values (`keep="values"`; each must be a plain constant)."""
    cls = find_class(wheel.tree(module), name, module)
    members: dict[str, Any] = {}
    for node in cls.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            member = node.targets[0].id
            if member.isupper():
                members[member] = node.value.value if isinstance(node.value, ast.Constant) else None
    if not members:
        raise SurfaceError(f"{module}: enum {name} has no members")
    if keep == "names":
        return list(members)
    if None in members.values():
        raise SurfaceError(f"{module}: enum {name} has members whose value is not a plain constant")
    return list(members.values())


def rule_holds(wheel: Wheel, rule: Rule) -> bool:
    """Whether an `if` in the rule's scope tests every fragment and its body has the rule's effect."""
    class_name, method = rule.scope.split(".")
    function = find_method(find_class(wheel.tree(rule.module), class_name, rule.module), method, rule.module)
    kinds: dict[str, tuple[type[ast.stmt], ...]] = {"raise": (ast.Raise,), "assign": (ast.Assign, ast.AugAssign)}
    for node in ast.walk(function):
        if isinstance(node, ast.If) and all(f in ast.unparse(node.test) for f in rule.fragments):
            body = [sub for stmt in node.body for sub in ast.walk(stmt)]
            if any(isinstance(sub, kinds[rule.effect]) for sub in body):
                return True
    return False


def _dedupe(values: Iterable[Any]) -> list[Any]:
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def snapshot(wheel_path: Path) -> dict[str, Any]:
    """Every fact of `surface.json`, read from the wheel at `wheel_path`.

    Raises:
        SurfaceError: A class, type or module the snapshot reads is missing or has a new shape.
    """
    wheel = Wheel(wheel_path)
    readers: list[tuple[str, dict[str, Any], Callable[..., Any]]] = [
        ("fields", FIELDS, lambda m, n: class_fields(wheel, m, n)),
        ("parameters", PARAMETERS, lambda m, n, f: keyword_parameters(wheel, m, n, f)),
    ]
    doc: dict[str, Any] = {
        "format": FORMAT,
        "version": 1,
        "vllm": wheel.version(),
        "wheel": wheel_path.name,
        "wheel_sha256": hashlib.sha256(wheel_path.read_bytes()).hexdigest(),
        "command": "nox -s vllm_surface",
    }
    for key, table, read in readers:
        doc[key] = {name: read(*where) for name, where in table.items()}
    values: dict[str, Any] = {}
    values |= {name: literal_values(wheel, *where) for name, where in LITERALS.items()}
    values |= {name: field_literal(wheel, *where) for name, where in FIELD_LITERALS.items()}
    values |= {name: dict_keys(wheel, *where) for name, where in REGISTRIES.items()}
    values |= {name: enum_members(wheel, *where) for name, where in ENUMS.items()}
    doc["values"] = dict(sorted(values.items()))
    doc["rules"] = {name: {"holds": rule_holds(wheel, rule), "meaning": rule.meaning} for name, rule in RULES.items()}
    return doc


def pinned_version(spec: Path = SPEC) -> str:
    """The vLLM version of the challenge's job image (`jobs_image` in the Gemma spec fragment)."""
    match = _IMAGE.search(spec.read_text(encoding="utf-8"))
    if match is None:
        raise SurfaceError(f"{spec}: no jobs_image of the form vllm/vllm-openai:vX.Y.Z")
    return match.group("version")


def dumps(doc: dict[str, Any]) -> str:
    """The file's text: one fact a line where it fits, so a vLLM bump reads as a short diff."""
    return json.dumps(doc, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write the snapshot of one wheel; `--pinned` prints the version to download and exits."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("wheel", type=Path, nargs="?", help="the vLLM wheel (.whl), downloaded, not installed")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default: {OUT.name} beside this)")
    parser.add_argument("--pinned", action="store_true", help="print the vLLM version of the job image and exit")
    args = parser.parse_args(argv)
    if args.pinned:
        print(pinned_version())
        return 0
    if args.wheel is None:
        parser.error("the wheel is required")
    try:
        doc = snapshot(args.wheel)
    except (SurfaceError, zipfile.BadZipFile, OSError, SyntaxError) as exc:
        print(f"vllm_surface: {exc}", file=sys.stderr)
        return 1
    args.out.write_text(dumps(doc), encoding="utf-8")
    print(f"wrote {args.out.name}: vLLM {doc['vllm']}, {len(doc['fields']['EngineArgs'])} engine arguments")
    return 0


if __name__ == "__main__":
    sys.exit(main())
