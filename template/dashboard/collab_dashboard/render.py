"""The one renderer of untrusted text. Every view shows agent-written text through it, nowhere else.

Agents write message bodies, result descriptions, bios, names and file names; any of them may be
an attack on the person reading (a script here would act with their signed-in session). So:

- Markdown (`markdown`) is parsed by markdown-it-py with raw HTML **off** (HTML in the text stays
  text), images off (no request to a host the agent chose), headings moved down three levels (so
  a message cannot take over the page's outline), then cleaned by nh3 with an allow-list of tags,
  attributes and classes. Links keep only `http`, `https` and `mailto` addresses or paths of this
  site, and get `rel="noopener nofollow ugc"`. `@handle` becomes a link to the agent's page.
- Everything else (names, ids, file names, frontmatter values) is plain text: Jinja escapes it
  (`autoescape` is on for every template), and `text` does the same outside templates.

The pages' Content-Security-Policy (security.py) is the second wall: even a bug here could not
run a script or load anything from another origin.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
import nh3
from markdown_it import MarkdownIt
from markdown_it.renderer import RendererHTML
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from markupsafe import Markup, escape

MENTION = re.compile(r"@([a-z][a-z0-9-]{1,38}[a-z0-9])(?![\w-])")
HEADING_SHIFT = 3
MAX_RENDER_CHARS = 200_000  # longer text is cut before parsing (the backend's caps are far lower)
LINK_REL = "noopener nofollow ugc"
TAGS = {
    "p", "br", "hr", "h4", "h5", "h6", "strong", "em", "del", "s", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td", "span",
}  # fmt: skip
ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}}
CLASSES = {"a": {"mention"}, "span": {"mention", "me"}}
_SAFE_HREF = re.compile(r"^(?:https?://[^\s/]|mailto:[^\s]|/(?![/\\])|#)", re.IGNORECASE)


def _href_filter(element: str, attribute: str, value: str) -> str | None:
    """Keep a link only to http(s), mailto, a path of this site, or an anchor; drop everything else."""
    if attribute == "href":
        return value if _SAFE_HREF.match(value) else None
    return value


_CLEANER = nh3.Cleaner(
    tags=TAGS,
    attributes=ATTRIBUTES,
    allowed_classes=CLASSES,
    attribute_filter=_href_filter,
    url_schemes={"http", "https", "mailto"},
    link_rel=LINK_REL,
    strip_comments=True,
    clean_content_tags={"script", "style"},
)


def _mention(state: StateInline, silent: bool) -> bool:
    """Inline rule: `@handle` (not inside a word or an address) becomes a mention token."""
    if state.src[state.pos] != "@":
        return False
    if state.pos > 0 and re.match(r"[\w@/.-]", state.src[state.pos - 1]):
        return False
    found = MENTION.match(state.src, state.pos)
    if found is None:
        return False
    if not silent:
        token = state.push("mention", "", 0)
        token.content = found.group(1)
    state.pos = found.end()
    return True


def _build() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.disable("image")
    md.inline.ruler.before("emphasis", "mention", _mention)

    def render_mention(renderer: RendererHTML, tokens: list[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
        handle = tokens[idx].content
        if handle == env.get("me"):
            return f'<span class="mention me">@{escape(handle)}</span>'
        if handle.startswith("human-"):
            return f'<span class="mention">@{escape(handle)}</span>'
        return f'<a class="mention" href="/agents/{quote(handle)}">@{escape(handle)}</a>'

    def heading(renderer: RendererHTML, tokens: list[Token], idx: int, options: Any, env: dict[str, Any]) -> str:
        token = tokens[idx]
        level = min(6, int(token.tag[1]) + HEADING_SHIFT)
        return f"<h{level}>" if token.nesting == 1 else f"</h{level}>\n"

    md.add_render_rule("mention", render_mention)
    md.add_render_rule("heading_open", heading)
    md.add_render_rule("heading_close", heading)
    return md


_MD = _build()


def markdown(text: object, me: str | None = None) -> Markup:
    """Agent-written Markdown as safe HTML; `me` marks mentions of the signed-in person."""
    source = str(text or "")[:MAX_RENDER_CHARS]
    html = _MD.render(source, {"me": me})
    cleaned = _CLEANER.clean(html)
    return Markup(cleaned)  # noqa: S704  # sanitized by the allow-list just above


def text(value: object) -> Markup:
    """Plain text as HTML (escaped)."""
    return escape(str(value if value is not None else ""))


def path_part(value: object) -> str:
    """A name as one URL path segment (agent ids, result ids, channel names)."""
    return quote(str(value), safe="")


def when(value: object) -> str:
    """An API timestamp (ISO 8601) shortened for people: `2026-12-06 16:20 UTC`."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value or "")
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def number(value: object, digits: int = 2) -> str:
    """A figure with a fixed number of decimals (non-numbers as they are)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value if value is not None else "")
    return f"{value:,.{digits}f}"


def environment() -> jinja2.Environment:
    """The templates' environment: autoescape always on, undefined names are errors."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(markdown=markdown, text=text, path_part=path_part, when=when, number=number)
    return env
