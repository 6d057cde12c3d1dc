"""Spec migrations: text edits that keep the owner's comments, idempotence, refusal of the unknown."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from provision import migrations
from provision.migrations import MigrationError, migrate_file, migrate_text
from provision.migrations.yaml_edit import rename_key, set_top_level_scalar
from provision.spec import CURRENT_SPEC_VERSION
from provision.spec.schema import load_schema

V1 = """\
# yaml-language-server: $schema=./schemas/challenge.schema.json
# My collab. Keep this comment.
spec_version: 1
challenge:
  org: acme   # the participants' org
  slug: fast
  title: Fast
  type: gemma
scoring:
  score_field: tps
  order: desc        # higher is better
  required_fields: [ppl]
"""


def test_v1_becomes_v2_keeping_comments_and_layout() -> None:
    text, report = migrate_text(V1)
    assert (report.from_version, report.to_version) == (1, 2)
    assert report.notes == [
        "'scoring.order' was renamed to 'scoring.direction' in spec_version 2 (desc -> maximize, asc -> minimize)"
    ]
    expected = V1.replace("spec_version: 1", "spec_version: 2").replace("order: desc", "direction: maximize")
    assert text == expected
    assert "# higher is better" in text and "# the participants' org" in text


def test_migrating_twice_changes_nothing_the_second_time() -> None:
    once, _ = migrate_text(V1)
    twice, report = migrate_text(once)
    assert twice == once
    assert not report.changed


def test_quoted_and_flow_style_values_keep_their_style() -> None:
    text = 'spec_version: 1\nscoring: {score_field: tps, order: "asc"}\n'
    out, _ = migrate_text(text)
    assert out == 'spec_version: 2\nscoring: {score_field: tps, direction: "minimize"}\n'


def test_missing_spec_version_counts_as_1_and_is_inserted_after_leading_comments() -> None:
    out, report = migrate_text("# header\nscoring:\n  order: asc\n")
    assert report.from_version == 1
    assert out == "# header\nspec_version: 2\nscoring:\n  direction: minimize\n"


def test_an_existing_replacement_is_not_overwritten() -> None:
    text = "spec_version: 1\nscoring:\n  order: asc\n  direction: maximize\n"
    out, _ = migrate_text(text)
    assert yaml.safe_load(out)["scoring"] == {"order": "asc", "direction": "maximize"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spec_version: 99\n", "newer than this kit"),
        ("spec_version: two\n", "positive whole number"),
        ("spec_version: true\n", "positive whole number"),
        ("a: [unclosed\n", "not valid YAML"),
    ],
)
def test_files_that_cannot_be_migrated_say_why(text: str, message: str) -> None:
    with pytest.raises(MigrationError, match=message):
        migrate_text(text)


def test_check_mode_leaves_the_file_alone(tmp_path: Path) -> None:
    spec = tmp_path / "challenge.yaml"
    spec.write_text(V1, encoding="utf-8")
    assert migrate_file(spec, check=True).changed
    assert spec.read_text(encoding="utf-8") == V1


def test_the_module_entry_point_is_what_copier_runs(tmp_path: Path) -> None:
    """copier.yml runs `python -m provision.migrations challenge.yaml` in the collab folder."""
    (tmp_path / "challenge.yaml").write_text(V1, encoding="utf-8")
    root = Path(migrations.__file__).resolve().parents[2]
    run = [sys.executable, "-m", "provision.migrations", "challenge.yaml"]
    env = {"PYTHONPATH": str(root), "PATH": ""}
    first = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("challenge.yaml: migrated spec_version 1 -> 2")
    second = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert second.stdout.strip() == "challenge.yaml: already at spec_version 2"
    (tmp_path / "challenge.yaml").write_text("spec_version: [\n", encoding="utf-8")
    broken = subprocess.run(run, cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert broken.returncode == 1
    assert "cannot migrate" in broken.stderr and "Traceback" not in broken.stderr


def test_migrations_need_only_the_standard_library_and_pyyaml(tmp_path: Path) -> None:
    """Copier's own interpreter runs them, where jsonschema and pydantic may be missing."""
    probe = (
        "import sys, importlib.abc\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name.split('.')[0] in {'jsonschema', 'pydantic'}: raise ImportError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import provision.migrations.__main__\n"
    )
    root = Path(migrations.__file__).resolve().parents[2]
    done = subprocess.run([sys.executable, "-c", probe], cwd=root, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_one_current_version_everywhere() -> None:
    assert max(load_schema()["properties"]["spec_version"]["enum"]) == CURRENT_SPEC_VERSION
    assert migrations.MIGRATIONS[-1].to_version == CURRENT_SPEC_VERSION


def test_text_helpers_touch_only_their_span() -> None:
    assert set_top_level_scalar("a: 1  # keep\nb: 2\n", "a", "3") == "a: 3  # keep\nb: 2\n"
    assert rename_key("x:\n  y: 1 # c\n", ("x", "y"), "z", {}) == "x:\n  z: 1 # c\n"
    assert rename_key("x: 1\n", ("missing",), "z", {}) == "x: 1\n"
