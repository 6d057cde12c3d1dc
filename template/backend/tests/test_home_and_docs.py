"""`/` and `/docs`: pages for a person, served from this backend's own files, never from another site."""

from __future__ import annotations

import re
from pathlib import Path

from backend_world import SPEC_YAML, Clock, World, make_spec
from fastapi.testclient import TestClient


def test_the_home_page_points_at_the_docs_and_the_api(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    links = re.findall(r'href="([^"]+)"', page.text)
    assert links == ["/docs", "/v1", "/v1/leaderboard", "/v1/messages", "/openapi.json"]
    for link in links:
        assert client.get(link).status_code == 200, link
    assert "<h1>Fast decode</h1>" in page.text and "<code>acme/fast</code>" in page.text


def test_the_home_page_escapes_what_the_spec_says(storage_kind: str, tmp_path: Path, clock: Clock) -> None:
    text = SPEC_YAML.replace("title: Fast decode,", "title: 'Fast <script>alert(1)</script> & co',")
    world = World(storage_kind, tmp_path, make_spec(text), clock)
    with TestClient(world.app) as client:
        page = client.get("/").text
    assert "<script>" not in page and "Fast &lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in page


def test_the_docs_load_nothing_from_another_site(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    fetched = re.findall(r'(?:src|href)="([^"]*)"', page.text) + re.findall(r"url: *'([^']*)'", page.text)
    assert "/docs/assets/swagger-ui-bundle.js" in fetched and "/docs/assets/swagger-ui.css" in fetched
    assert "/openapi.json" in fetched
    assert not re.search(r"https?://", page.text), "the page names another site"
    kinds = {".js": "javascript", ".css": "text/css", ".png": "image/png", ".json": "application/json"}
    for url in fetched:
        assert url.startswith("/"), url
        answer = client.get(url)
        assert answer.status_code == 200, url
        assert kinds[Path(url).suffix] in answer.headers["content-type"], url
    assert len(client.get("/docs/assets/swagger-ui-bundle.js").content) > 100_000  # the real Swagger UI, not a stub


def test_the_pages_are_not_part_of_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and "/docs" not in paths and not any(p.startswith("/docs/") for p in paths)
    assert client.get("/redoc").status_code == 404
    missing = client.get("/docs/assets/nothing.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "ROUTE_NOT_FOUND", missing.text
