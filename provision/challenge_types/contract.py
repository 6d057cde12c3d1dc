"""The challenge-type contract: what a type declares about itself, checked when it is declared.

A type is a package named `challenge_<name>` that exposes one `ChallengeType` object. Invariant:
every file a declaration names lies inside that package folder, because the folder is all of the
type that a rendered collab receives. Data hooks (harness, examples, schemas, task text) are paths
relative to the folder; code hooks (the cheap check) are callables. docs/challenge-types.md
describes each hook with an example.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, Literal

from provision.challenge_types.demo import DemoScript
from provision.errors import ChallengeTypeError
from provision.paths import schemas_dir
from provision.spec import schema as spec_schema

if TYPE_CHECKING:
    from jsonschema.protocols import Validator
    from referencing import Registry, Resource

    from provision.spec.model import ChallengeSpec

Verdict = Literal["valid", "invalid"]

#: The harness's own arguments; the job launcher passes them, so `cpu_args` may not.
HARNESS_FLAGS = ("--submission-dir", "--state-dir", "--private-dir")
#: What the backend passes itself besides the folders; `job_args` may set none of these.
LAUNCHER_FLAGS = (*HARNESS_FLAGS, "--job-id", "--time-budget-s")
#: The job entrypoint inside the harness folder (the spec's `jobs.entrypoint` default).
HARNESS_ENTRYPOINT = "run.py"
#: The folder beside the entrypoint that receives a type's `harness_data` (`<harness_prefix>data/`).
HARNESS_DATA = "data"
#: The folder, inside a type's package, of the JSON Schemas the type defines (optional).
TYPE_SCHEMAS = "schemas"

_PLACEHOLDER = re.compile(r"\$(\$)?\{([^}\n]*)\}")
_SPEC_PATH = re.compile(r"[a-z_][a-z0-9_]*(?:\.(?:[a-z_][a-z0-9_]*|[0-9]{1,3}))*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_CONFIG_PATH = re.compile(r"(?!\.\.?(?:/|\Z))[A-Za-z0-9_.-]{1,100}(?:/(?!\.\.?(?:/|\Z))[A-Za-z0-9_.-]{1,100}){0,4}")


@dataclass(frozen=True)
class CheckResult:
    """What a cheap check concluded about one claimed result.

    Attributes:
        verdict: `"valid"` or `"invalid"`; `None` when the check cannot tell, and the result
            stays pending for a jobs re-run or the organizers.
        reason: One sentence for the board announcement: what was checked, or what was wrong and
            how to fix it. Never empty.
    """

    verdict: Verdict | None
    reason: str

    def __post_init__(self) -> None:
        if self.verdict not in ("valid", "invalid", None):
            raise ChallengeTypeError(f"a cheap check's verdict is 'valid', 'invalid' or None, not {self.verdict!r}")
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise ChallengeTypeError("a cheap check must give a reason with every verdict")


CheapCheck = Callable[[str, Mapping[str, Any], str, "ChallengeSpec"], CheckResult]
JobArgs = Callable[["ChallengeSpec"], tuple[str, ...]]


@dataclass(frozen=True)
class ChallengeType:
    """A challenge type's declaration: every hook the kit calls, checked on construction.

    Declare one per package, in `challenge_<name>/__init__.py`, as `challenge_type`, and register it
    under the `collab.challenge_types` entry point group as `<name> = "challenge_<name>:challenge_type"`.

    Attributes:
        name: The registered name, written as `challenge.type` in challenge.yaml: lowercase
            letters, digits and '_', starting with a letter. The package must be `challenge_<name>`.
        title: Short human title; it must equal the `title` its Copier fragment sets.
        summary: One line saying what participants optimise; Copier lists the type as
            `<name>: <summary>` when it asks for the challenge type.
        package_dir: The package folder, normally `Path(__file__).parent`.
        cheap_check: `cheap_check(filename, frontmatter, body, spec) -> CheckResult`, run by the
            eval Space on each claimed result in `eval-space` verification mode. It must never
            raise on what a participant wrote.
        harness: Folder holding the job entrypoint `run.py`, uploaded as it is to the central
            bucket and mounted into jobs. Relative to `package_dir`.
        harness_data: Folder of public data the harness reads, uploaded beside it as
            `<harness_prefix>data/`, so a job finds it as `data/` next to `run.py`; `None` (the
            default) when the harness folder holds all it reads. Relative to `package_dir`, and
            neither inside the harness folder nor holding it.
        private_sample: Folder of a stand-in private set in the harness's data formats (Gemma: a
            few prompts other than the public sample's, marked `private`), which local mode seeds
            into the audit bucket at `verification.private_set`, so a rehearsal re-runs on a
            private set; `None` (the default) when the type has none. Never seeded on the Hub,
            where the organizers upload the real private set. Relative to `package_dir`, and
            neither inside the harness folder nor holding it.
        examples: Folder of example submissions (`valid/<name>/`, `invalid/<name>/`) and example
            results (`results/{valid,invalid,pending}/<name>.md`). Relative to `package_dir`.
        summary_schema: JSON Schema of this type's `summary.json`, applied on top of the kit's
            `schemas/job-summary.schema.json`. Relative to `package_dir`.
        task: Markdown template of the task section of the onboarding README; `${a.b}` is replaced
            by the spec value at that path (e.g. `${scoring.score_field}`; a number indexes a list,
            as in `${scoring.metrics.0.guardrail.max}`), `$${` writes `${`. Relative to `package_dir`.
        cpu_args: Extra harness arguments that make it run on a CPU without special hardware
            (e.g. `("--engine", "fake")`); the conformance suite and local rehearsals pass them.
        submission_config: The JSON file, inside a submission folder, that the organizers'
            ruling predicates are evaluated on (Gemma: `submission.json`); `None` (the default)
            when a submission has no such file, and rulings are scoped by results and
            fingerprints only. A relative path with '/', e.g. `"config/run.json"`.
        job_args: `job_args(spec) -> tuple[str, ...]`: the harness arguments every job passes
            that come from the spec (e.g. `("--ppl-cap", "2.42")` from a metric's guardrail), so a
            job's verdict and the leaderboard's read the same value; `None` (the default) when the
            harness needs none. Provisioning hands them to the backend (`COLLAB_JOBS_ARGS`), whose
            launchers pass them to every run but a CPU stand-in's.
        denylist: The type's standing rules: a JSON file inside the harness folder (relative to
            it, so it is seeded with the harness and the harness reads it too) listing the names
            and values a submission config may not hold, each with its reason (Gemma:
            `"gemma_eval/denied.json"`). The backend shows them beside the organizers' rulings
            and refuses a matching job launch; `None` (the default) when the type has none. Needs
            `submission_config`; the format is in docs/challenge-types.md.
    """

    name: str
    title: str
    summary: str
    package_dir: Path
    cheap_check: CheapCheck
    harness: str = "harness"
    harness_data: str | None = None
    private_sample: str | None = None
    examples: str = "examples"
    summary_schema: str = "summary.schema.json"
    task: str = "task.md"
    cpu_args: tuple[str, ...] = ()
    submission_config: str | None = None
    job_args: JobArgs | None = None
    denylist: str | None = None
    demo: DemoScript = field(default_factory=DemoScript)

    def __post_init__(self) -> None:
        if isinstance(self.package_dir, str | Path):
            object.__setattr__(self, "package_dir", Path(self.package_dir).resolve())
        problems = declaration_problems(self)
        if problems:
            label = self.name if isinstance(self.name, str) else "?"
            raise ChallengeTypeError(
                f"challenge type '{label}' is declared wrongly:\n"
                + "\n".join(f"  - {p}" for p in problems)
                + "\n  (see docs/challenge-types.md for each hook)"
            )

    @property
    def package(self) -> str:
        """The importable package name, `challenge_<name>`."""
        return f"challenge_{self.name}"

    @property
    def harness_dir(self) -> Path:
        """The harness folder: `run.py` and everything it reads."""
        return self.package_dir / self.harness

    @property
    def entrypoint(self) -> Path:
        """The job entrypoint, `run.py` inside the harness folder."""
        return self.harness_dir / HARNESS_ENTRYPOINT

    @property
    def harness_data_dir(self) -> Path | None:
        """The folder uploaded as `data/` beside `run.py`, or None when the type declares none."""
        return None if self.harness_data is None else self.package_dir / self.harness_data

    @property
    def private_sample_dir(self) -> Path | None:
        """The stand-in private set local mode seeds into the audit bucket, or None when the type has none."""
        return None if self.private_sample is None else self.package_dir / self.private_sample

    @property
    def examples_dir(self) -> Path:
        """The folder of example submissions and example results."""
        return self.package_dir / self.examples

    @property
    def summary_schema_path(self) -> Path:
        """This type's summary.json schema file."""
        return self.package_dir / self.summary_schema

    @property
    def schemas_dir(self) -> Path:
        """The folder of this type's own JSON Schemas, `schemas/` in the package (it may not exist).

        A rendered collab receives it with the package, so a type's formats travel only with
        collabs of that type; the kit-wide schemas stay in the kit's `schemas/` folder.
        """
        return self.package_dir / TYPE_SCHEMAS

    @property
    def task_path(self) -> Path:
        """The Markdown template of the onboarding README's task section."""
        return self.package_dir / self.task

    @property
    def copier_fragment(self) -> Path:
        """The Copier fragment (`copier/spec.jinja`): question defaults and the new spec's sections.

        It exists only in the template repository; a rendered collab does not receive it.
        """
        return self.package_dir / "copier" / "spec.jinja"

    def task_section(self, spec: ChallengeSpec) -> str:
        """Render the task section of the onboarding README for one collab.

        Args:
            spec: The collab's loaded challenge spec; `${path}` placeholders read its values.

        Returns:
            Markdown, without a trailing newline.

        Raises:
            ChallengeTypeError: the task file is missing or not UTF-8, or a placeholder names no
                scalar spec value.
        """
        try:
            text = self.task_path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ChallengeTypeError(f"{self.package}/{self.task}: cannot read the task section: {exc}") from exc
        return render_task(text, spec.to_document(), where=f"{self.package}/{self.task}").strip()

    def job_arguments(self, spec: ChallengeSpec) -> tuple[str, ...]:
        """The harness arguments a job of this collab passes from its spec (the `job_args` hook).

        Args:
            spec: The collab's loaded challenge spec.

        Returns:
            The arguments, empty when the type declares no `job_args`.

        Raises:
            ChallengeTypeError: the hook raised, or gave something other than a tuple of short
                printable strings, or set an argument the launcher passes itself.
        """
        if self.job_args is None:
            return ()
        try:
            args = self.job_args(spec)
        except Exception as exc:  # a type's bug, said with its name
            raise ChallengeTypeError(f"{self.package}: job_args failed on this spec: {exc!r}") from exc
        problem = job_args_problem(args)
        if problem:
            raise ChallengeTypeError(f"{self.package}: job_args gave {args!r}: {problem}")
        return args

    def load_summary_schema(self) -> dict[str, Any]:
        """Read and check this type's summary schema.

        Returns:
            The schema as a mapping, valid against its own metaschema.

        Raises:
            ChallengeTypeError: the file is missing, not JSON, or not a valid JSON Schema object.
        """
        import jsonschema  # deferred: looking a type up stays cheap

        where = f"{self.package}/{self.summary_schema}"
        try:
            schema = json.loads(self.summary_schema_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ChallengeTypeError(f"{where}: cannot read the summary schema: {exc}") from exc
        if not isinstance(schema, dict) or schema.get("type") != "object":
            raise ChallengeTypeError(f'{where}: the summary schema must describe an object ("type": "object")')
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ChallengeTypeError(f"{where}: not a valid JSON Schema: {exc.message}") from exc
        return schema

    def schema_registry(self) -> Registry[Any]:
        """The kit's schemas and this type's own, by `$id`: what a `$ref` in them may name.

        Returns:
            A registry that never fetches anything: a reference to any other schema is unresolvable.

        Raises:
            ChallengeTypeError: a schema file cannot be read, has no `$id`, or takes an `$id` already taken.
        """
        files = sorted(self.schemas_dir.glob("*.json")) if self.schemas_dir.is_dir() else []
        return schema_registry([*sorted(schemas_dir().glob("*.json")), *files], root=self.package_dir.parent)

    def summary_validator(self) -> Validator:
        """A validator of `summary.json` against this type's summary schema, its `$ref`s resolved offline.

        The summary schema may reference the kit's schemas and the type's own (`schemas/`) by
        their `$id`; nothing is fetched from the network.

        Returns:
            A jsonschema validator; `iter_errors(summary)` lists what is wrong with a summary.

        Raises:
            ChallengeTypeError: the schema is unreadable or invalid (see `load_summary_schema`), or
                it references a schema that is neither the kit's nor the type's.
        """
        import jsonschema  # deferred: looking a type up stays cheap

        schema = self.load_summary_schema()
        registry = self.schema_registry()
        problems = unresolved_references(schema, registry)
        if problems:
            raise ChallengeTypeError(
                f"{self.package}/{self.summary_schema}: {'; '.join(problems)} (a $ref names the $id of a schema "
                f"in the kit's schemas/ or in {self.package}/{TYPE_SCHEMAS}/; nothing is fetched)"
            )
        validator: Validator = jsonschema.validators.validator_for(schema)(schema, registry=registry)
        return validator


def schema_registry(paths: list[Path], *, root: Path | None = None) -> Registry[Any]:
    """A registry of local JSON Schema files by their `$id`, for resolving `$ref`s offline.

    Args:
        paths: The schema files; each must have an `$id` of its own.
        root: Error messages name the files relative to this folder.

    Returns:
        The registry. It retrieves nothing, so a reference to any other schema stays unresolvable.

    Raises:
        ChallengeTypeError: a file cannot be read, is not a schema object with an `$id`, or
            repeats an `$id`.
    """
    from referencing import Registry

    def named(path: Path) -> str:
        return path.relative_to(root).as_posix() if root and path.is_relative_to(root) else path.name

    registry: Registry[Any] = Registry()
    seen: dict[str, Path] = {}
    for path in paths:
        try:
            contents = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise ChallengeTypeError(f"{named(path)}: cannot read the schema: {exc}") from exc
        uri = contents.get("$id") if isinstance(contents, dict) else None
        if not isinstance(uri, str) or not uri:
            raise ChallengeTypeError(f'{named(path)}: a schema needs an "$id", by which other schemas reference it')
        if uri in seen:
            raise ChallengeTypeError(f"{named(path)}: its $id {uri} is taken by {named(seen[uri])} already")
        seen[uri] = path
        registry = registry.with_resource(uri, _resource(contents))
    return registry


def unresolved_references(schema: Mapping[str, Any], registry: Registry[Any]) -> list[str]:
    """The `$ref`s of `schema` that neither it nor `registry` resolves, as sentences; empty when all do."""
    from referencing.exceptions import Unresolvable

    base = schema.get("$id")
    base = base if isinstance(base, str) else ""
    resolver = (registry.with_resource(base, _resource(schema)) if base else registry).resolver(base_uri=base)
    problems = []
    for ref in sorted(set(_references(schema))):
        if ref.startswith("#"):  # inside the schema itself: the validator resolves it
            continue
        try:
            resolver.lookup(ref)
        except Unresolvable:
            problems.append(f"$ref {ref!r} names no known schema")
    return problems


def _resource(contents: Mapping[str, Any]) -> Resource[Any]:
    from referencing import Resource
    from referencing.jsonschema import DRAFT202012

    return Resource.from_contents(contents, default_specification=DRAFT202012)


def _references(node: object) -> list[str]:
    """Every `$ref` string anywhere in a schema document."""
    if isinstance(node, Mapping):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        for value in node.values():
            found += _references(value)
        return found
    if isinstance(node, list):
        return [ref for item in node for ref in _references(item)]
    return []


def declaration_problems(declared: ChallengeType) -> list[str]:
    """Every way a declaration breaks the contract, as sentences; empty when it is sound.

    Files are checked for where they are, not whether they exist yet: a type loads while its
    harness is still being written, and the conformance suite insists on the files themselves.
    """
    problems: list[str] = []
    name = declared.name
    if not isinstance(name, str) or not spec_schema.matches(name, ("challenge", "type")):
        problems.append(f"name {name!r}: a type name is lowercase letters, digits and '_', starting with a letter")
    for key, limit in (("title", 80), ("summary", 120)):
        value = getattr(declared, key)
        if not isinstance(value, str) or not value.strip() or len(value) > limit or _CONTROL.search(value):
            problems.append(f"{key} {value!r}: one line of text, 1 to {limit} characters")
    package_dir = declared.package_dir
    if not isinstance(package_dir, Path) or not package_dir.is_dir():
        problems.append(f"package_dir {package_dir!r}: the package's folder, normally Path(__file__).parent")
        return problems
    if isinstance(name, str) and package_dir.name != f"challenge_{name}":
        problems.append(
            f"package_dir is {package_dir.name}/, but type '{name}' must live in challenge_{name}/: "
            "the template and the rendered collab find a type's files by that name"
        )
    if not callable(declared.cheap_check):
        problems.append("cheap_check: a function (filename, frontmatter, body, spec) -> CheckResult")
    for key in ("harness", "examples", "summary_schema", "task"):
        problem = _inside(package_dir, key, getattr(declared, key))
        if problem:
            problems.append(problem)
    if declared.harness_data is not None:
        problems += _data_problems(package_dir, declared.harness, declared.harness_data)
    if declared.private_sample is not None:
        problems += _data_problems(package_dir, declared.harness, declared.private_sample, "private_sample")
        problems += _private_apart(package_dir, declared.harness_data, declared.private_sample)
    args = declared.cpu_args
    if not isinstance(args, tuple) or not all(isinstance(a, str) for a in args):
        problems.append(f"cpu_args {args!r}: a tuple of strings, e.g. ('--engine', 'fake')")
    elif taken := [a for a in args if a.split("=", 1)[0] in HARNESS_FLAGS]:
        problems.append(f"cpu_args may not set {', '.join(taken)}: the job launcher passes the harness folders")
    config = declared.submission_config
    if config is not None and (not isinstance(config, str) or not _CONFIG_PATH.fullmatch(config)):
        problems.append(
            f"submission_config {config!r}: a relative path inside a submission folder, e.g. 'submission.json'"
        )
    if declared.job_args is not None and not callable(declared.job_args):
        problems.append("job_args: a function (spec) -> tuple of harness arguments, or None")
    denylist = declared.denylist
    if denylist is not None:
        problems += _denylist_problems(package_dir, declared.harness, denylist, config)
    if isinstance(declared.demo, DemoScript):
        problems += declared.demo.problems()
    else:
        problems.append(f"demo {declared.demo!r}: a DemoScript (provision.challenge_types.demo)")
    return problems


def job_args_problem(args: object) -> str | None:
    """Why `args` are not harness arguments a job may pass from the spec, or None when they are."""
    if not isinstance(args, tuple) or not all(isinstance(a, str) for a in args):
        return "a tuple of strings, e.g. ('--ppl-cap', '2.42')"
    if len(args) > 32 or any(not 0 < len(a) <= 200 or not a.isprintable() for a in args):
        return "at most 32 arguments, each 1 to 200 printable characters"
    if taken := [a for a in args if a.split("=", 1)[0] in LAUNCHER_FLAGS]:
        return f"{', '.join(taken)}: the launcher passes these itself"
    return None


def _inside(package_dir: Path, key: str, value: object) -> str | None:
    """Why `value` is not a relative path that stays inside the package folder, or None."""
    if not isinstance(value, str) or not value.strip():
        return f"{key} {value!r}: a path relative to the package folder"
    if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() or "\\" in value:
        return f"{key} {value!r}: write a relative path with '/', inside the package folder"
    if ".." in PurePosixPath(value).parts:
        return f"{key} {value!r}: '..' leaves the package folder; only the package travels with a collab"
    resolved = (package_dir / value).resolve()
    if not resolved.is_relative_to(package_dir):
        return f"{key} {value!r}: resolves to {resolved}, outside the package folder (a symlink?); copy it in instead"
    return None


def _denylist_problems(package_dir: Path, harness: object, denylist: object, config: object) -> list[str]:
    """Why `denylist` is not a JSON file's path inside the harness folder, or is declared without a config."""
    if not isinstance(denylist, str) or not _CONFIG_PATH.fullmatch(denylist):
        return [f"denylist {denylist!r}: a relative path inside the harness folder, e.g. 'gemma_eval/denied.json'"]
    problems = []
    if isinstance(harness, str) and (problem := _inside(package_dir, "denylist", f"{harness}/{denylist}")):
        problems.append(problem)
    if config is None:
        problems.append("denylist: its rules are read on the submission config; declare submission_config too")
    return problems


def _data_problems(package_dir: Path, harness: object, data: object, key: str = "harness_data") -> list[str]:
    """Why `data` (`harness_data`, `private_sample`) is not a folder of the package apart from the harness folder."""
    problem = _inside(package_dir, key, data)
    if problem:
        return [problem]
    if not isinstance(harness, str) or _inside(package_dir, "harness", harness):
        return []  # reported for `harness` already
    data_dir, harness_dir = (package_dir / str(data)).resolve(), (package_dir / harness).resolve()
    if data_dir.is_relative_to(harness_dir) or harness_dir.is_relative_to(data_dir):
        where = (
            f"it is uploaded beside run.py as {HARNESS_DATA}/ (files the harness folder holds travel with it already)"
            if key == "harness_data"
            else "the harness folder is public, the private set is not"
        )
        return [f"{key} {data!r}: a folder apart from the harness folder {harness!r}, neither inside it nor "
                f"holding it; {where}"]  # fmt: skip
    return []


def _private_apart(package_dir: Path, data: object, private: object) -> list[str]:
    """Why the private sample shares a folder with `harness_data` (the public data, uploaded with the harness)."""
    if not isinstance(data, str) or not isinstance(private, str) or _inside(package_dir, "", data):
        return []
    if _inside(package_dir, "", private):
        return []  # reported already
    a, b = (package_dir / data).resolve(), (package_dir / private).resolve()
    if a.is_relative_to(b) or b.is_relative_to(a):
        return [f"private_sample {private!r}: a folder apart from harness_data {data!r}, which is uploaded with the "
                "harness for everyone to read"]  # fmt: skip
    return []


def render_task(text: str, document: Mapping[str, Any], *, where: str) -> str:
    """Replace `${a.b}` placeholders with the spec values at those paths (`${a.0.b}` indexes a list).

    Args:
        text: The Markdown template.
        document: The fully defaulted spec as plain data.
        where: The template's name, for error messages.

    Returns:
        The rendered Markdown.

    Raises:
        ChallengeTypeError: a placeholder is malformed or names no scalar value of the spec.
    """

    def replace(match: re.Match[str]) -> str:
        escaped, path = match.group(1), match.group(2)
        if escaped:
            return "${" + path + "}"
        if not _SPEC_PATH.fullmatch(path):
            raise ChallengeTypeError(
                f"{where}: ${{{path}}} is not a placeholder; write a spec path such as ${{scoring.score_field}}, "
                "or $${ for a literal ${"
            )
        value: Any = document
        for part in path.split("."):
            if isinstance(value, list) and part.isdigit() and int(part) < len(value):
                value = value[int(part)]
            elif isinstance(value, Mapping) and part in value:
                value = value[part]
            else:
                raise ChallengeTypeError(
                    f"{where}: ${{{path}}} names no spec value; the keys are listed in docs/challenge-spec.md"
                )
        if isinstance(value, bool):
            return "true" if value else "false"
        if value is None:
            return ""
        if isinstance(value, str) or (isinstance(value, int | float) and math.isfinite(value)):
            return str(value)
        raise ChallengeTypeError(f"{where}: ${{{path}}} is a {type(value).__name__}; only single values can be shown")

    return _PLACEHOLDER.sub(replace, text)
