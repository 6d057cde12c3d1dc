"""`collab new-type`: write a new challenge type package from the skeleton, ready to register.

The skeleton, `scaffold/challenge_newtype/` in the template repository, is itself a complete type
with a stand-in task; the conformance suite runs on a fresh copy of it, so a new type starts out
passing. The skeleton is not part of an installed kit or of a rendered collab (challenge types
live in the template repository), and the command says so when it cannot find it.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from provision.errors import ProvisionError
from provision.paths import PACKAGE_DIR
from provision.spec import schema, type_names

SKELETON_NAME = "newtype"
SKELETON_TITLE = "New challenge type"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class ScaffoldError(ProvisionError, ValueError):
    """A new type cannot be written: a bad name or title, a taken folder, or no skeleton."""


@dataclass(frozen=True)
class Scaffold:
    """What `scaffold_type` wrote."""

    name: str
    package_dir: Path
    files: tuple[Path, ...]


def skeleton_dir() -> Path:
    """The skeleton package in the template repository.

    Raises:
        ScaffoldError: the kit runs from an installed wheel or a rendered collab, without it.
    """
    skeleton = PACKAGE_DIR.parent / "scaffold" / f"challenge_{SKELETON_NAME}"
    if not (skeleton / "__init__.py").is_file():
        raise ScaffoldError(
            f"the type skeleton (scaffold/challenge_{SKELETON_NAME}/) is not beside this kit: run `collab new-type` "
            "in a clone of the template repository, where challenge types live, after `pip install -e .`"
        )
    return skeleton


def scaffold_type(name: str, dest: Path, title: str | None = None) -> Scaffold:
    """Write `dest/challenge_<name>/`, a copy of the skeleton renamed to `name`.

    Args:
        name: The new type's registered name (lowercase letters, digits and '_', starting with a
            letter, at most 32 characters).
        dest: The folder to write into: the template repository's root.
        title: The type's title; `"<Name> challenge"` when omitted.

    Returns:
        The package folder and the files written.

    Raises:
        ScaffoldError: the name or title is not valid, the name is registered already, the
            package folder exists, or the skeleton is not here.
    """
    if not schema.matches(name, ("challenge", "type")):
        raise ScaffoldError(
            f"{name!r} is not a type name: use lowercase letters, digits and '_', starting with a letter, "
            "at most 32 characters (it becomes challenge.type and the package challenge_<name>)"
        )
    if name in type_names.registered():
        raise ScaffoldError(f"a challenge type named '{name}' is registered already; choose another name")
    title = title if title is not None else f"{name.replace('_', ' ').capitalize()} challenge"
    if not title.strip() or len(title) > 80 or _CONTROL.search(title):
        raise ScaffoldError(f"the title must be one line of 1 to 80 characters, not {title!r}")
    if not dest.is_dir():
        raise ScaffoldError(f"{dest} is not a folder: pass the template repository's root with --dest")
    target = dest / f"challenge_{name}"
    if target.exists() or target.is_symlink():
        raise ScaffoldError(f"{target} exists already; choose another name or move it away")
    skeleton = skeleton_dir()
    # Write beside the target and move it into place, so a failure leaves no half-written package.
    with tempfile.TemporaryDirectory(dir=dest, prefix=f".challenge_{name}.") as scratch:
        staged = Path(scratch) / target.name
        for source in sorted(skeleton.rglob("*")):
            if "__pycache__" in source.parts or source.suffix in (".pyc", ".pyo") or not source.is_file():
                continue
            relative = Path(*(part.replace(SKELETON_NAME, name) for part in source.relative_to(skeleton).parts))
            out = staged / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(_rename(source, source.read_text(encoding="utf-8"), name, title), encoding="utf-8")
        staged.rename(target)
    files = tuple(sorted(p for p in target.rglob("*") if p.is_file()))
    return Scaffold(name, target, files)


def _rename(path: Path, text: str, name: str, title: str) -> str:
    text = text.replace(json.dumps(SKELETON_TITLE), _quoted(title, python=path.suffix == ".py"))
    return text.replace(SKELETON_NAME, name)


def _quoted(text: str, *, python: bool) -> str:
    """`text` as a string literal for Python or Jinja, quoted the way ruff's formatter keeps it."""
    quote = "'" if python and text.count('"') > text.count("'") else '"'
    return quote + text.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


def next_steps(scaffold: Scaffold) -> str:
    """What is left to register the new type, as the command prints it."""
    name, package = scaffold.name, scaffold.package_dir.name
    return f"""\
Next, in the template repository (CONTRIBUTING.md has the whole checklist):
  1. pyproject.toml: under [project.entry-points."collab.challenge_types"] add
       {name} = "{package}:challenge_type"
     and add "{package}" to [tool.hatch.build.targets.wheel] packages and [tool.mypy] files
  2. copier.yml: add the choice  "{name}: <its summary>": {name}  to challenge_type
  3. ln -s ../{package} template/{package}
  4. pip install -e '.[test]' && pytest tests/challenges -k {name}
Then replace the stand-in task; docs/challenge-types.md describes every hook."""
