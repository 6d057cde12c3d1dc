"""Copier's questions: defaults, every validator's message, `when` branches, and agreement with the schema.

Copier cannot read JSON Schema, so copier.yml repeats the schema's name rules; the agreement tests
feed the same samples to both and require the same verdict, so the two cannot drift apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import referencing
import yaml
from template_harness import REPO, read_answers, render

from provision.spec import check_spec
from provision.spec.schema import SpecValidator

QUOTA_QUESTIONS = ("jobs_per_agent_per_day", "jobs_per_user_per_day")


def copier_verdict(src: Path, tmp_path: Path, question: str, value: Any, base: dict[str, Any]) -> bool:
    """Whether Copier accepts `value` for `question` (a dry run of `questions_src`; no files written)."""
    try:
        render(src, tmp_path / "collab", {**base, question: value}, pretend=True, vcs_ref=None)
    except ValueError as exc:
        assert str(exc).startswith(f"Validation error for question '{question}': "), str(exc)
        return False
    return True


def refusal(src: Path, tmp_path: Path, data: dict[str, Any], **kwargs: Any) -> str:
    """Render with `data`, expecting Copier to refuse; return its message."""
    with pytest.raises(ValueError) as refused:
        render(src, tmp_path / "collab", data, **kwargs)
    assert not (tmp_path / "collab").exists(), "a refused render must not leave a half-written collab"
    return str(refused.value)


# ---------------------------------------------------------------- defaults


@pytest.fixture(scope="module")
def default_collab(render_from: Callable[..., Path]) -> Path:
    return render_from()


def test_defaults_render_a_valid_collab(default_collab: Path, template_src: Path) -> None:
    config = yaml.safe_load((REPO / "copier.yml").read_text(encoding="utf-8"))
    answers = read_answers(default_collab)
    assert answers["org"] == config["org"]["default"]
    assert answers["admin_org"] == f"{answers['org']}-admin"
    assert answers["challenge_type"] == config["challenge_type"]["default"]
    assert answers["slug"] == f"{answers['challenge_type']}-collab"
    assert answers["title"].strip() and answers["tagline"].strip()
    assert answers["invite_link"] == ""
    loaded, problems = check_spec(default_collab)
    assert problems == [], "\n".join(p.render() for p in problems)
    assert loaded is not None
    spec = loaded.spec
    assert (spec.challenge.org, spec.challenge.admin_org, spec.challenge.slug) == (
        answers["org"],
        answers["admin_org"],
        answers["slug"],
    )
    assert spec.challenge.title == answers["title"]
    assert spec.jobs.enabled is answers["jobs_enabled"]
    assert spec.verification.mode == answers["verification_mode"]
    assert loaded.document["dashboard"]["invite_link"] is None, "an empty invite link is written as null"


# ---------------------------------------------------------------- validators: readable refusals

BAD_ANSWERS = [
    ("org", "bad--org", "An org name is letters, digits, '-', '_' and '.'"),
    ("org", "-org", "starting and ending with a letter or digit"),
    ("org", "my org", "An org name is letters, digits"),
    ("org", "", "An org name is letters, digits"),
    ("admin_org", "admins..x", "without '--' or '..'"),
    ("slug", "Gemma", "A slug is lowercase letters, digits and '-'"),
    ("slug", "x" * 33, "at most 32 characters"),
    ("title", "   ", "The title cannot be empty."),
    ("title", "T" * 81, "The title is at most 80 characters."),
    ("tagline", "t" * 201, "The tagline is at most 200 characters."),
    ("jobs_per_agent_per_day", -1, "Choose 0 to 1000 launches per agent per day."),
    ("jobs_per_agent_per_day", 1001, "Choose 0 to 1000 launches per agent per day."),
    ("jobs_per_user_per_day", 10001, "Choose 0 to 10000 launches per user per day."),
    ("invite_link", "http://huggingface.co/x", "The invite link is an https:// URL without spaces"),
    ("invite_link", "https://huggingface.co/a b", "The invite link is an https:// URL without spaces"),
    ("invite_link", "https://h.co/" + "x" * 500, "at most 512 characters"),
]


@pytest.mark.parametrize(
    ("question", "value", "expected"), BAD_ANSWERS, ids=[f"{q}-{i}" for i, (q, _, _) in enumerate(BAD_ANSWERS)]
)
def test_bad_answer_is_refused_readably(
    question: str, value: Any, expected: str, questions_src: Path, tmp_path: Path
) -> None:
    data = {question: value, "jobs_enabled": True} if question in QUOTA_QUESTIONS else {question: value}
    message = refusal(questions_src, tmp_path, data, vcs_ref=None)
    prefix = f"Validation error for question '{question}': "
    assert message.startswith(prefix), message
    reason = message.removeprefix(prefix)
    assert expected in reason
    # A sentence for people: one line, no template syntax, no stray whitespace from the YAML folding.
    assert "\n" not in reason and "{" not in reason and "  " not in reason, repr(reason)
    assert reason[0].isupper() and reason.endswith("."), repr(reason)


def test_admin_org_must_differ_from_org(template_src: Path, tmp_path: Path) -> None:
    message = refusal(template_src, tmp_path, {"org": "acme-ai", "admin_org": "acme-ai"})
    assert message == (
        "Validation error for question 'admin_org': The admin org must differ from the challenge org: "
        "participants can read every bucket of the org they join."
    )


# ---------------------------------------------------------------- `when` branches


def test_jobs_off_hides_the_quota_questions(render_from: Callable[..., Path]) -> None:
    collab = render_from({"jobs_enabled": False, "jobs_per_agent_per_day": 7})
    answers = read_answers(collab)
    assert answers["jobs_enabled"] is False
    assert not set(QUOTA_QUESTIONS) & answers.keys(), "hidden questions must not be stored"
    # The type's default verification (jobs) is impossible without jobs, so the default falls back.
    assert answers["verification_mode"] == "manual"
    spec = yaml.safe_load((collab / "challenge.yaml").read_text(encoding="utf-8"))
    assert spec["jobs"] == {"enabled": False}
    assert "| jobs | off |" in (collab / "README.md").read_text(encoding="utf-8")


def test_jobs_on_asks_and_stores_the_quotas(default_collab: Path) -> None:
    answers = read_answers(default_collab)
    assert answers["jobs_enabled"] is True
    spec = yaml.safe_load((default_collab / "challenge.yaml").read_text(encoding="utf-8"))
    assert spec["jobs"]["quota"] == {
        "per_agent_per_day": answers["jobs_per_agent_per_day"],
        "per_user_per_day": answers["jobs_per_user_per_day"],
    }


# ---------------------------------------------------------------- agreement with the schema

SCHEMA = json.loads((REPO / "schemas" / "challenge.schema.json").read_text(encoding="utf-8"))
REGISTRY = referencing.Registry().with_resource(SCHEMA["$id"], referencing.Resource.from_contents(SCHEMA))


def schema_verdict(pointer: str, value: Any) -> bool:
    """Whether the challenge schema accepts `value` at the JSON pointer `pointer`."""
    validator = SpecValidator({"$ref": f"{SCHEMA['$id']}#{pointer}"}, registry=REGISTRY)
    return validator.is_valid(value)


ORG_POINTER = "/properties/challenge/properties/org"
SLUG_POINTER = "/properties/challenge/properties/slug"

# (name, valid as a Hub org name)
ORG_NAMES = [
    ("my-collab", True),
    ("A", True),
    ("7", True),
    ("Org_Name.v2", True),
    ("a.-b", True),
    ("a" * 96, True),
    ("HuggingFaceH4", True),
    ("", False),
    ("-org", False),
    ("org-", False),
    (".org", False),
    ("org_", False),
    ("my--org", False),
    ("my..org", False),
    ("a" * 97, False),
    ("my org", False),
    ("org/x", False),
    ("ürg", False),
    ("org\n", False),
]

# (name, valid as a slug)
SLUG_NAMES = [
    ("gemma-collab", True),
    ("a", True),
    ("x1", True),
    ("9lives", True),
    ("a" * 32, True),
    ("", False),
    ("Gemma", False),
    ("gemma--collab", False),
    ("-gemma", False),
    ("gemma-", False),
    ("a" * 33, False),
    ("gemma_collab", False),
    ("gem.ma", False),
    ("gemma collab", False),
    ("gemma\n", False),
]


def _id(value: Any) -> str:
    if isinstance(value, bool):
        return "valid" if value else "invalid"
    text = str(value)
    return repr(text if len(text) <= 12 else f"{text[:6]}..({len(text)})")


@pytest.mark.parametrize(("name", "valid"), ORG_NAMES, ids=_id)
def test_org_rule_agrees_with_schema(name: str, valid: bool, questions_src: Path, tmp_path: Path) -> None:
    # The admin org is given explicitly: its default ("<org>-admin") is too long for a 96-character org.
    accepted = copier_verdict(questions_src, tmp_path, "org", name, {"admin_org": "organizers-only"})
    assert (accepted, schema_verdict(ORG_POINTER, name)) == (valid, valid)


@pytest.mark.parametrize(("name", "valid"), SLUG_NAMES, ids=_id)
def test_slug_rule_agrees_with_schema(name: str, valid: bool, questions_src: Path, tmp_path: Path) -> None:
    accepted = copier_verdict(questions_src, tmp_path, "slug", name, {})
    assert (accepted, schema_verdict(SLUG_POINTER, name)) == (valid, valid)


def test_admin_org_rule_is_the_org_rule() -> None:
    """admin_org is checked by the same pattern and `not` pattern as org, in Copier and in the schema."""
    config = yaml.safe_load((REPO / "copier.yml").read_text(encoding="utf-8"))
    org_rule = config["org"]["validator"].split("%}")[0].replace("org", "NAME")
    admin_rule = config["admin_org"]["validator"].split("%}")[0].replace("admin_org", "NAME")
    assert org_rule == admin_rule
    challenge = SCHEMA["properties"]["challenge"]["properties"]
    assert challenge["admin_org"]["allOf"] == challenge["org"]["allOf"]


# The other limits Copier enforces, at their boundaries: the schema must agree.
LIMITS = [
    ("title", "/properties/challenge/properties/title", "T" * 80, True),
    ("title", "/properties/challenge/properties/title", "T" * 81, False),
    ("title", "/properties/challenge/properties/title", "", False),
    ("tagline", "/properties/challenge/properties/tagline", "t" * 200, True),
    ("tagline", "/properties/challenge/properties/tagline", "t" * 201, False),
    ("jobs_per_agent_per_day", "/properties/jobs/properties/quota/properties/per_agent_per_day", 0, True),
    ("jobs_per_agent_per_day", "/properties/jobs/properties/quota/properties/per_agent_per_day", 1000, True),
    ("jobs_per_agent_per_day", "/properties/jobs/properties/quota/properties/per_agent_per_day", -1, False),
    ("jobs_per_user_per_day", "/properties/jobs/properties/quota/properties/per_user_per_day", 10000, True),
    ("jobs_per_user_per_day", "/properties/jobs/properties/quota/properties/per_user_per_day", 10001, False),
    ("invite_link", "/properties/dashboard/properties/invite_link", "https://h.co/" + "x" * 499, True),
    ("invite_link", "/properties/dashboard/properties/invite_link", "https://h.co/" + "x" * 500, False),
    ("invite_link", "/properties/dashboard/properties/invite_link", "ftp://h.co/x", False),
]


@pytest.mark.parametrize(
    ("question", "pointer", "value", "valid"), LIMITS, ids=[f"{q}-{_id(v)}" for q, _, v, _ in LIMITS]
)
def test_limits_agree_with_schema(
    question: str, pointer: str, value: Any, valid: bool, questions_src: Path, tmp_path: Path
) -> None:
    base = {"jobs_enabled": True} if question in QUOTA_QUESTIONS else {}
    accepted = copier_verdict(questions_src, tmp_path, question, value, base)
    assert (accepted, schema_verdict(pointer, value)) == (valid, valid)


def test_default_slug_of_a_type_name_with_an_underscore_is_a_valid_slug() -> None:
    """Copier renders the default slug with the same filter for every type name."""
    import jinja2

    config = yaml.safe_load((REPO / "copier.yml").read_text(encoding="utf-8"))
    template = jinja2.Environment(autoescape=False).from_string(config["slug"]["default"])  # noqa: S701
    slug = template.render(challenge_type="my_task")
    assert slug == "my-task-collab"
    assert schema_verdict(SLUG_POINTER, slug)
