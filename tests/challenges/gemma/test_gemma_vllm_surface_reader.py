"""The snapshot reader: what it takes from a wheel's source with `ast`, and how it fails when vLLM moves things."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
import vllm_surface
from vllm_surface import Rule, SurfaceError, Wheel

CONFIG = """
from dataclasses import field
from typing import ClassVar, Literal

Inner = Literal["a", "b"]
Outer = Literal["c", Inner, "a"]
_REGISTRY: dict[str, type] = {"auto": object, "dummy": object}


class Mode(IntEnum):
    NONE = 0
    FULL = 2
    _hidden = 3


class Backend(Enum):
    FLASH = "pkg.Flash"
    PAIR = (FULL, NONE)


class Config:
    model: str = ""
    version: Literal[2, 3] | None = None
    cached: list[str] = field(default_factory=list, init=False)
    ops: ClassVar[list[str]] = []
    plain = 4

    def __post_init__(self):
        if self.metrics != "none" and self.speculative is None:
            raise ValueError("needs speculative decoding")
        if "stats" not in self.kwargs:
            self.kwargs["stats"] = True


class LLM:
    def __init__(self, model, *, seed=0, dtype="auto", **kwargs):
        pass
"""


def make_wheel(tmp_path: Path, files: dict[str, str], version: str = "9.9.9") -> Path:
    path = tmp_path / f"vllm-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
        archive.writestr(f"vllm-{version}.dist-info/METADATA", f"Name: vllm\nVersion: {version}\n")
    return path


@pytest.fixture
def wheel(tmp_path: Path) -> Wheel:
    return Wheel(make_wheel(tmp_path, {"vllm/config.py": CONFIG}))


def test_fields_leave_out_class_variables_and_fields_no_caller_can_set(wheel: Wheel) -> None:
    assert vllm_surface.class_fields(wheel, "vllm/config.py", "Config") == ["model", "version"]


def test_literals_follow_aliases_and_keep_their_order(wheel: Wheel) -> None:
    assert vllm_surface.literal_values(wheel, "vllm/config.py", "Outer") == ["c", "a", "b"]
    assert vllm_surface.field_literal(wheel, "vllm/config.py", "Config", "version") == [2, 3]


def test_registries_enums_parameters_and_version(wheel: Wheel) -> None:
    assert vllm_surface.dict_keys(wheel, "vllm/config.py", "_REGISTRY") == ["auto", "dummy"]
    assert vllm_surface.enum_members(wheel, "vllm/config.py", "Mode", "values") == [0, 2]
    assert vllm_surface.enum_members(wheel, "vllm/config.py", "Backend") == ["FLASH", "PAIR"]
    assert vllm_surface.keyword_parameters(wheel, "vllm/config.py", "LLM", "__init__") == ["model", "seed", "dtype"]
    assert wheel.version() == "9.9.9"


def test_rules_are_found_by_the_code_that_enforces_them(wheel: Wheel) -> None:
    def rule(fragments: tuple[str, ...], effect: str) -> Rule:
        return Rule("vllm/config.py", "Config.__post_init__", fragments, effect, "")

    assert vllm_surface.rule_holds(wheel, rule(("metrics != 'none'", "speculative is None"), "raise"))
    assert vllm_surface.rule_holds(wheel, rule(("'stats' not in self.kwargs",), "assign"))
    assert not vllm_surface.rule_holds(wheel, rule(("'stats' not in self.kwargs",), "raise"))
    assert not vllm_surface.rule_holds(wheel, rule(("metrics != 'detailed'",), "raise"))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda w: vllm_surface.class_fields(w, "vllm/config.py", "Missing"), "class Missing not found"),
        (lambda w: vllm_surface.class_fields(w, "vllm/gone.py", "Config"), "vllm/gone.py: not in"),
        (lambda w: vllm_surface.literal_values(w, "vllm/config.py", "Nope"), "Nope not found"),
        (lambda w: vllm_surface.field_literal(w, "vllm/config.py", "Config", "model"), "has no Literal"),
        (lambda w: vllm_surface.enum_members(w, "vllm/config.py", "Backend", "values"), "not a plain constant"),
        (lambda w: vllm_surface.dict_keys(w, "vllm/config.py", "Outer"), "not a dict literal"),
    ],
)
def test_a_moved_name_stops_the_reader_with_what_it_looked_for(wheel: Wheel, call: object, message: str) -> None:
    with pytest.raises(SurfaceError, match=message):
        call(wheel)  # type: ignore[operator]


def test_main_reports_a_wheel_without_vllms_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wheel = make_wheel(tmp_path, {"vllm/__init__.py": ""})
    out = tmp_path / "surface.json"
    assert vllm_surface.main([str(wheel), "--out", str(out)]) == 1
    assert "not in vllm-9.9.9" in capsys.readouterr().err and not out.exists()


def test_the_pinned_version_is_the_job_images(tmp_path: Path) -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", vllm_surface.pinned_version())
    spec = tmp_path / "spec.jinja"
    spec.write_text('{%- set jobs_image = "python:3.12" -%}', encoding="utf-8")
    with pytest.raises(SurfaceError, match="no jobs_image"):
        vllm_surface.pinned_version(spec)
