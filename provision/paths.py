"""Where the kit's own files live, in the template repository and in a rendered collab alike.

Both trees put `schemas/` beside `provision/`; an installed wheel carries a copy inside the
package (see pyproject.toml), so the lookup tries the package first.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
SPEC_FILENAME = "challenge.yaml"
CHALLENGE_SCHEMA = "challenge.schema.json"


def schemas_dir() -> Path:
    """Return the folder holding the JSON Schemas."""
    for candidate in (PACKAGE_DIR / "schemas", PACKAGE_DIR.parent / "schemas"):
        if (candidate / CHALLENGE_SCHEMA).is_file():
            return candidate
    raise FileNotFoundError(f"{CHALLENGE_SCHEMA} not found beside {PACKAGE_DIR}; the kit's schemas/ folder is missing")


def spec_path(target: str | Path) -> Path:
    """Resolve `collab <verb> [DIR]`: a folder means its challenge.yaml, a file means itself."""
    path = Path(target)
    return path / SPEC_FILENAME if path.is_dir() else path
