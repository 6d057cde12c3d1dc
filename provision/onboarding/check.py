"""The onboarding check: what in a collab's README would leave an agent with a question or a failed call.

`check_readme` reads a README (the generated one, or one an organizer edited) and reports, each
with where it is and how to fix it:

- `link`: a relative link to a file the central bucket is not seeded with, or an anchor to no heading;
- `parse`: a fenced example that does not parse as its language (JSON, Python, YAML, a Markdown
  file's frontmatter, bash through `bash -n`), or a block in a language it cannot check;
- `endpoint`: a `METHOD /v1/...` in the text, or a curl call, that the backend's routes do not have;
- `placeholder`: an unfilled `${...}` or Jinja `{{ }}`/`{% %}`, or a leftover HTML comment;
- `result-field`: a result example (frontmatter with the score field) without a field the spec requires.

The API is read from the backend's route modules (`@router.<method>("<path>")` under the router's
prefix), statically: nothing of the backend runs.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```$", re.MULTILINE | re.DOTALL)
_ROUTER = re.compile(r'APIRouter\(\s*prefix="([^"]*)"')
_ROUTE = re.compile(r'@router\.(get|post|put|delete|patch)\(\s*"([^"]*)"')
_TEXT_ENDPOINT = re.compile(r"\b(GET|POST|PUT|DELETE|PATCH) (/v1[^\s`?]*)")
_CURL = re.compile(r"curl\b[^\n]*?(?:-X (\w+)[^\n]*?)?\"\$COLLAB_API(/v1[^\"?\s]*)")
_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)\)")
_PLACEHOLDERS = (
    (re.compile(r"\$\{[^}\n]*\}"), "an unfilled `${...}` placeholder"),
    (re.compile(r"\{\{.*?\}\}|\{%.*?%\}"), "an unrendered Jinja expression"),
    (re.compile(r"<!--.*?-->", re.DOTALL), "a leftover HTML comment (a note to the README's authors)"),
)


@dataclass(frozen=True)
class Problem:
    """One thing to fix: its kind, the line it is on (1-based), and what is wrong."""

    kind: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind}: {self.message}"


def api_routes(backend_dir: Path) -> set[tuple[str, str]]:
    """Every (METHOD, path) the backend's route modules declare, e.g. ("GET", "/v1/messages/{message_id}")."""
    routes = set()
    for module in sorted((backend_dir / "collab_backend" / "routes").glob("*.py")):
        text = module.read_text(encoding="utf-8")
        prefix = (_ROUTER.findall(text) or [""])[0]
        for method, path in _ROUTE.findall(text):
            routes.add((method.upper(), (prefix + path).rstrip("/") or "/"))
    return routes


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _known(method: str, path: str, routes: set[tuple[str, str]]) -> bool:
    """Whether a route has this method and path; a `{param}` of the route takes any one segment."""
    parts = path.rstrip("/").split("/")
    for route_method, route in routes:
        wanted = route.split("/")
        if (
            route_method == method
            and len(wanted) == len(parts)
            and all(w == p or (w.startswith("{") and p) for w, p in zip(wanted, parts, strict=True))
        ):
            return True
    return False


def _slug(heading: str) -> str:
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def parse_problem(lang: str, body: str) -> str | None:
    """Why a fenced example does not parse as its language; None when it does."""
    try:
        if lang == "json":
            json.loads(body)
        elif lang == "python":
            compile(body, "<README example>", "exec")
        elif lang == "yaml":
            yaml.safe_load(body)
        elif lang == "markdown":
            if body.startswith("---\n"):
                head, sep, _ = body.removeprefix("---\n").partition("\n---\n")
                if not sep or not isinstance(yaml.safe_load(head), dict):
                    return "its frontmatter is not a YAML mapping closed by a --- line"
        elif lang == "bash":
            done = subprocess.run(["bash", "-n"], input=body, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                return f"bash cannot parse it: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else '?'}"
        else:
            return f"a ```{lang or '(no language)'} block, which the check cannot parse: name its language"
    except (ValueError, SyntaxError, yaml.YAMLError) as exc:
        return f"not valid {lang}: {str(exc).splitlines()[0]}"
    return None


def check_readme(
    text: str, *, routes: set[tuple[str, str]], files: Iterable[str], required_fields: Iterable[str], score_field: str
) -> list[Problem]:
    """Every problem of a README, in the order they appear.

    Args:
        text: The README.
        routes: The backend's (METHOD, path) pairs (`api_routes`).
        files: The paths the central bucket is seeded with, which relative links may name.
        required_fields: The fields the spec requires in a result (besides the score).
        score_field: The spec's score field; a frontmatter example that carries it is a result example.
    """
    problems: list[Problem] = []
    seeded = set(files)
    anchors = {_slug(h) for h in re.findall(r"^#+ (.+)$", text, re.MULTILINE)}
    for match in _LINK.finditer(text):
        target = match.group(1)
        if target.startswith(("http://", "https://", "mailto:")):
            continue
        path, _, anchor = target.partition("#")
        if path and path.lstrip("./") not in seeded:
            problems.append(
                Problem("link", _line(text, match.start()), f"{target} is not a file of the central bucket")
            )
        elif not path and anchor and anchor not in anchors:
            problems.append(Problem("link", _line(text, match.start()), f"#{anchor} is no heading of the README"))
    for pattern, what in _PLACEHOLDERS:
        for match in pattern.finditer(text):
            problems.append(Problem("placeholder", _line(text, match.start()), f"{what}: {match.group(0)[:60]}"))
    for match in _TEXT_ENDPOINT.finditer(text):
        method, path = match.group(1), match.group(2).rstrip(".,;:)")
        if not _known(method, path, routes):
            problems.append(Problem("endpoint", _line(text, match.start()), f"{method} {path} is not in the API"))
    required = [score_field, *dict.fromkeys(required_fields)]
    for match in FENCE.finditer(text):
        indent, lang, body = match.group(1), match.group(2), match.group(3)
        body = "\n".join(line.removeprefix(indent) for line in body.split("\n"))
        line = _line(text, match.start())
        problem = parse_problem(lang, body)
        if problem:
            problems.append(Problem("parse", line, problem))
            continue
        if lang == "bash":
            for call in _CURL.finditer(body):
                method, path = call.group(1) or "GET", call.group(2)
                if not _known(method, path, routes):
                    problems.append(Problem("endpoint", line, f"the example calls {method} {path}, not in the API"))
        if lang == "markdown" and body.startswith("---\n"):
            fields = yaml.safe_load(body.removeprefix("---\n").partition("\n---\n")[0])
            if isinstance(fields, dict) and score_field in fields:
                missing = [f for f in required if f not in fields]
                if missing:
                    problems.append(
                        Problem("result-field", line, f"the result example lacks {', '.join(missing)} (required)")
                    )
    return sorted(problems, key=lambda p: p.line)
