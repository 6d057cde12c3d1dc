"""The one renderer of agent-written text: what it keeps, what it drops, and that no input yields markup."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collab_dashboard.render import environment, markdown, path_part, text, when

FORBIDDEN = re.compile(
    r"<(script|img|iframe|svg|math|style|link|meta|base|form|object|embed|input|video|audio)\b", re.I
)
EVENT_ATTRIBUTE = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
SAFE_HREF = re.compile(r"^(https?://[^\s/]|mailto:|/(?![/\\])|#)", re.I)


def test_markdown_is_rendered_and_raw_html_stays_text() -> None:
    html = str(markdown("**bold** and `code`\n\n<b onclick=alert(1)>hi</b>"))
    assert "<strong>bold</strong>" in html and "<code>code</code>" in html
    assert "&lt;b onclick=alert(1)&gt;hi&lt;/b&gt;" in html and "<b" not in html


@pytest.mark.parametrize(
    ("source", "kept"),
    [
        ("[ok](https://example.org/x)", '<a href="https://example.org/x" rel="noopener nofollow ugc">ok</a>'),
        ("[mail](mailto:a@example.org)", '<a href="mailto:a@example.org" rel="noopener nofollow ugc">mail</a>'),
        ("[here](/results/r1)", '<a href="/results/r1" rel="noopener nofollow ugc">here</a>'),
    ],
)
def test_safe_links_are_kept_with_rel(source: str, kept: str) -> None:
    assert kept in str(markdown(source))


@pytest.mark.parametrize(
    "source",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](data:text/html,<script>alert(1)</script>)",
        "[x](vbscript:msgbox(1))",
        "[x](//evil.example/path)",
        "[x](/\\evil.example)",
        "[x][r]\n\n[r]: javascript:alert(1)",
        "<javascript:alert(1)>",
    ],
)
def test_dangerous_links_lose_their_address(source: str) -> None:
    hrefs = re.findall(r'href="([^"]*)"', str(markdown(source)))
    assert all(SAFE_HREF.match(h) for h in hrefs), hrefs


def test_images_are_never_loaded() -> None:
    html = str(markdown("![pixel](https://evil.example/p.gif)"))
    assert "<img" not in html and "evil.example" in html  # a link the reader may follow, not a request


def test_headings_move_down_so_a_message_cannot_take_over_the_outline() -> None:
    html = str(markdown("# Big\n\n## Less"))
    assert "<h4>Big</h4>" in html and "<h5>Less</h5>" in html and "<h1" not in html


def test_mentions_link_agents_and_mark_the_viewer() -> None:
    html = str(markdown("@speedy meets @human-ada, not mail@example.org", me="human-ada"))
    assert '<a class="mention" href="/agents/speedy" rel="noopener nofollow ugc">@speedy</a>' in html
    assert '<span class="mention me">@human-ada</span>' in html
    assert "mail@example.org" in html and "/agents/example" not in html


def test_plain_text_helpers_escape() -> None:
    assert str(text("<script>")) == "&lt;script&gt;"
    assert path_part("a/b?c") == "a%2Fb%3Fc"
    assert when("2026-12-06T16:20:00.000Z") == "2026-12-06 16:20 UTC"
    assert when("not a time") == "not a time"


def test_templates_autoescape_everything() -> None:
    env = environment()
    assert env.autoescape is True
    rendered = env.from_string("{{ value }}").render(value="<img src=x onerror=alert(1)>")
    assert rendered == "&lt;img src=x onerror=alert(1)&gt;"


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.sampled_from(list("<>\"'`=/:;()[]{}!@#&%\\ \nabcjsvgimrptxdeo*_-|~0123456789")), max_size=200)
)
def test_no_input_yields_an_element_outside_the_allow_list(source: str) -> None:
    html = str(markdown(source))
    assert not FORBIDDEN.search(html), html
    assert not EVENT_ATTRIBUTE.search(html), html
    for href in re.findall(r'href="([^"]*)"', html):
        assert SAFE_HREF.match(href), href


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_any_unicode_renders(source: str) -> None:
    html = str(markdown(source))
    assert not FORBIDDEN.search(html)
