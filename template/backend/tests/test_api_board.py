"""The board: posts, mentions, threads, channels, human posts, broadcasts, promotion."""

from __future__ import annotations

import pytest
from backend_world import Clock, World, auth
from fastapi.testclient import TestClient


@pytest.fixture
def alice(world: World, client: TestClient) -> str:
    token = world.user("alice")
    world.agent(client, token, "speedy")
    return token


def post(client: TestClient, token: str, body: str, **extra: object) -> dict:
    response = client.post("/v1/messages", json={"agent_id": "speedy", "body": body, **extra}, headers=auth(token))
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_two_posts_in_the_same_millisecond_both_survive(client: TestClient, alice: str) -> None:
    first, second = post(client, alice, "one"), post(client, alice, "two")
    assert first["posted_at"] == second["posted_at"]  # the test clock does not move
    assert first["id"] != second["id"]
    bodies = [m["body"] for m in client.get("/v1/messages").json()["items"]]
    assert bodies == ["two", "one"]


def test_mentions_and_refs_reach_inboxes(world: World, client: TestClient, alice: str) -> None:
    bob = world.user("bob")
    world.agent(client, bob, "helper")
    root = client.post("/v1/messages", json={"agent_id": "helper", "body": "baseline"}, headers=auth(bob)).json()
    mention = post(client, alice, "thanks @helper, and hi @nobody-here", refs=[root["id"]])
    assert mention["mentions"] == ["helper"]
    inbox = client.get("/v1/inbox/helper").json()["items"]
    assert [m["id"] for m in inbox] == [mention["id"]]  # delivered once, though mentioned and referred to


def test_refs_and_replies_notify_the_authors_they_point_at(world: World, client: TestClient, alice: str) -> None:
    bob = world.user("bob")
    world.agent(client, bob, "helper")
    root = client.post("/v1/messages", json={"agent_id": "helper", "body": "baseline"}, headers=auth(bob)).json()
    referring = post(client, alice, "building on that", refs=[root["id"]])
    reply = post(client, alice, "a reply", thread=root["id"])
    own_reply = client.post("/v1/messages", json={"agent_id": "helper", "body": "me again", "thread": root["id"]},
                            headers=auth(bob)).json()  # fmt: skip
    inbox = [m["id"] for m in client.get("/v1/inbox/helper", params={"after": ""}).json()["items"]]
    assert inbox == [referring["id"], reply["id"]]  # not its own reply
    assert own_reply["id"] not in inbox
    assert client.get(f"/v1/inbox/{root['id']}").json()["items"] == []  # ids are not handles
    world.record.settle()  # the files of the writes before are written
    central = world.spec.storage.central_bucket
    assert world.storage.list(central, f"inbox/{root['id']}/").items == []


def test_a_self_mention_is_kept_but_never_delivered_to_ones_own_inbox(
    world: World, client: TestClient, alice: str
) -> None:
    for name in ("a1", "a2", "a3"):
        world.agent(client, world.user(f"user-{name}"), f"agent-{name}")
    note = post(client, alice, "note to @speedy: ask @agent-a1, @agent-a2 and @agent-a3")
    assert note["mentions"] == ["speedy", "agent-a1", "agent-a2", "agent-a3"]  # within the cap of 3: self is free
    assert client.get("/v1/inbox/speedy", params={"after": ""}).json()["items"] == []
    assert [m["id"] for m in client.get("/v1/inbox/agent-a1").json()["items"]] == [note["id"]]
    reply = post(client, alice, "answering myself, @speedy", thread=note["id"], refs=[note["id"]])
    assert reply["mentions"] == ["speedy"]
    assert client.get("/v1/inbox/speedy", params={"after": ""}).json()["items"] == []
    world.record.settle()  # the files of the writes before are written
    assert world.storage.list(world.spec.storage.central_bucket, "inbox/speedy/").items == []


def test_a_promotion_refused_before_it_is_written_costs_no_promotion(
    world: World, client: TestClient, alice: str
) -> None:
    refs = "\n".join(f"  - m{i}" for i in range(51))  # more refs than any message may carry
    world.write(alice, world.bucket_of("speedy"), {"posts/wide.md": f"---\nrefs:\n{refs}\n---\nwide".encode(),
                                                    "posts/fine.md": b"fine"})  # fmt: skip
    for _ in range(world.spec.board.promotions.limit + 1):
        refused = client.post("/v1/messages/promote", json={"agent_id": "speedy", "path": "posts/wide.md"},
                              headers=auth(alice))  # fmt: skip
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "FANOUT_EXCEEDED"
    fine = client.post("/v1/messages/promote", json={"agent_id": "speedy", "path": "posts/fine.md"},
                       headers=auth(alice))  # fmt: skip
    assert fine.status_code == 201, fine.text


def test_fanout_is_capped(world: World, client: TestClient, alice: str) -> None:
    for name in ("a1", "a2", "a3", "a4"):
        world.agent(client, world.user(f"user-{name}"), f"agent-{name}")
    body = " ".join(f"@agent-{n}" for n in ("a1", "a2", "a3", "a4"))
    response = client.post("/v1/messages", json={"agent_id": "speedy", "body": body}, headers=auth(alice))
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "FANOUT_EXCEEDED"


def test_threads_collect_replies_to_replies(client: TestClient, alice: str) -> None:
    root = post(client, alice, "idea")
    reply = post(client, alice, "first reply", thread=root["id"])
    nested = post(client, alice, "reply to the reply", thread=reply["id"])
    assert reply["thread"] == nested["thread"] == root["id"]
    thread = client.get(f"/v1/messages/{nested['id']}/thread").json()
    assert thread["root"]["id"] == root["id"]
    assert [m["id"] for m in thread["items"]] == [reply["id"], nested["id"]]
    unknown = client.post(
        "/v1/messages", json={"agent_id": "speedy", "body": "x", "thread": "nope"}, headers=auth(alice)
    )
    assert unknown.json()["error"]["code"] == "THREAD_UNKNOWN"


def test_channels(world: World, client: TestClient, alice: str) -> None:
    created = client.post("/v1/channels", json={"agent_id": "speedy", "name": "mtp", "description": "drafters"},
                          headers=auth(alice))  # fmt: skip
    assert created.status_code == 201
    post(client, alice, "in mtp", channel="mtp")
    names = {c["name"]: c["messages"] for c in client.get("/v1/channels").json()["items"]}
    assert names == {"general": 0, "results": 0, "rulings": 0, "mtp": 1}  # `rulings`: every collab has it
    assert (
        client.post("/v1/channels", json={"agent_id": "speedy", "name": "mtp"}, headers=auth(alice)).status_code == 409
    )
    assert client.post("/v1/channels", json={"agent_id": "speedy", "name": "Bad Name"},
                       headers=auth(alice)).status_code == 422  # fmt: skip
    missing = client.post("/v1/messages", json={"agent_id": "speedy", "body": "x", "channel": "nowhere"},
                          headers=auth(alice))  # fmt: skip
    assert missing.json()["error"]["code"] == "CHANNEL_UNKNOWN"
    assert [m["channel"] for m in client.get("/v1/messages?channel=mtp").json()["items"]] == ["mtp"]


def test_posting_as_someone_elses_agent_is_refused(world: World, client: TestClient, alice: str) -> None:
    mallory = world.user("mallory")
    response = client.post("/v1/messages", json={"agent_id": "speedy", "body": "it was me"}, headers=auth(mallory))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "AGENT_NOT_REGISTERED"


def test_raw_posts_are_limited_exactly_as_documented(client: TestClient, alice: str, clock: Clock) -> None:
    for i in range(5):
        post(client, alice, f"post {i}")
    refused = client.post("/v1/messages", json={"agent_id": "speedy", "body": "sixth"}, headers=auth(alice))
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "60"
    clock.now += 59.9
    assert client.post("/v1/messages", json={"agent_id": "speedy", "body": "x"}, headers=auth(alice)).status_code == 429
    clock.now += 0.1  # a full window after the first post
    post(client, alice, "allowed again")


def test_human_posts_need_org_membership(world: World, client: TestClient) -> None:
    member = world.user("carol")
    outsider = world.add_user("dave", "hf_dave_token", {"elsewhere": "admin"})
    ok = client.post("/v1/messages", json={"body": "hello agents"}, headers=auth(member))
    assert ok.status_code == 201 and ok.json()["author"] == "human-carol" and ok.json()["role"] == "human"
    refused = client.post("/v1/messages", json={"body": "hello"}, headers=auth(outsider))
    assert refused.json()["error"]["code"] == "NOT_ORG_MEMBER"


def test_broadcasts_are_for_org_admins_and_fail_closed(world: World, client: TestClient, alice: str) -> None:
    from collab_testing.hub import ADMIN_TOKEN

    sent = client.post("/v1/broadcasts", json={"body": "deadline moved"}, headers=auth(ADMIN_TOKEN))
    assert sent.status_code == 201 and sent.json()["role"] == "organizer"
    assert client.post("/v1/broadcasts", json={"body": "x"}, headers=auth(alice)).json()["error"]["code"] == (
        "NOT_ORGANIZER"
    )
    digest = client.get("/v1/digest/speedy").json()
    assert [m["body"] for m in digest["announcements"]] == ["deadline moved"]
    if world.kind == "hub":  # the role lookup fails: refuse, do not guess
        world.hub.fail("whoami", 503)
        fresh = world.add_user("admin2", "hf_admin2", {"acme": "admin"})
        response = client.post("/v1/broadcasts", json={"body": "x"}, headers=auth(fresh))
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "ROLE_LOOKUP_FAILED"


def test_promoted_posts_keep_server_fields_and_are_deduplicated(world: World, client: TestClient, alice: str) -> None:
    forged = (
        b"---\nauthor: someone-else\nattribution: raw\nid: forged\nchannel: results\nnote: kept\n---\n\n"
        b"MTP K=7 gives 286 tokens/s"
    )
    world.write(alice, world.bucket_of("speedy"), {"posts/claim.md": forged})
    first = client.post("/v1/messages/promote", json={"agent_id": "speedy", "path": "posts/claim.md"},
                        headers=auth(alice))  # fmt: skip
    assert first.status_code == 201, first.text
    message = first.json()
    assert (message["author"], message["attribution"], message["channel"]) == ("speedy", "promoted", "results")
    assert message["id"] != "forged" and message["body"] == "MTP K=7 gives 286 tokens/s"
    assert message["source"]["bucket"] == "acme/fast-speedy"
    again = client.post("/v1/messages/promote", json={"agent_id": "speedy", "path": "posts/claim.md"},
                        headers=auth(alice))  # fmt: skip
    assert again.status_code == 200 and again.json()["id"] == message["id"]
    world.record.settle()  # the files of the writes before are written
    stored = world.storage.read(world.spec.storage.central_bucket, f"message_board/{message['id']}-speedy.md").decode()
    assert (
        "author: speedy" in stored and "someone-else" not in stored and "note:" not in stored
    )  # not a field it accepts


@pytest.mark.parametrize(
    ("path", "code"),
    [("../fast-other/x.md", "INVALID_PATH"), ("/etc/passwd", "INVALID_PATH"), ("a//b.md", "INVALID_PATH"),
     ("missing.md", "SOURCE_NOT_FOUND")],
)  # fmt: skip
def test_promotion_sources_stay_inside_the_agents_bucket(client: TestClient, alice: str, path: str, code: str) -> None:
    response = client.post("/v1/messages/promote", json={"agent_id": "speedy", "path": path}, headers=auth(alice))
    assert response.json()["error"]["code"] == code


def test_promoting_binary_or_oversized_files(world: World, client: TestClient, alice: str) -> None:
    world.write(alice, world.bucket_of("speedy"), {"bin.md": b"\xff\xfe\x00", "big.md": b"x" * 5000})
    binary = client.post("/v1/messages/promote", json={"agent_id": "speedy", "path": "bin.md"}, headers=auth(alice))
    assert binary.json()["error"]["code"] == "NOT_UTF8"
    big = client.post("/v1/messages/promote", json={"agent_id": "speedy", "path": "big.md"}, headers=auth(alice))
    assert big.json()["error"]["code"] == "BODY_TOO_LARGE"


def test_pages_walk_the_board_without_gaps(client: TestClient, world: World) -> None:
    tokens = [world.user(f"user{i}") for i in range(3)]
    for i, token in enumerate(tokens):
        world.agent(client, token, f"agent-{i}")
        for j in range(4):
            r = client.post("/v1/messages", json={"agent_id": f"agent-{i}", "body": f"{i}-{j}"}, headers=auth(token))
            assert r.status_code == 201
    seen, cursor = [], None
    while True:
        page = client.get("/v1/messages", params={"limit": 5, **({"before": cursor} if cursor else {})}).json()
        seen += [m["body"] for m in page["items"]]
        if not page["next"]:
            break
        cursor = page["next"]
    assert len(seen) == 12 and len(set(seen)) == 12
    forward = client.get("/v1/messages", params={"limit": 200, "after": ""}).json()["items"]
    assert [m["body"] for m in forward] == list(reversed(seen))


@pytest.mark.parametrize(
    "header",
    [
        "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b]\n",
        "deep: " + "[" * 40 + "]" * 40 + "\n",
        "just: [unclosed\n",
    ],
)
def test_frontmatter_bombs_are_refused(world: World, client: TestClient, alice: str, header: str) -> None:
    world.write(alice, world.bucket_of("speedy"), {"bomb.md": f"---\n{header}---\n\nbody".encode()})
    response = client.post("/v1/messages/promote", json={"agent_id": "speedy", "path": "bomb.md"}, headers=auth(alice))
    assert response.status_code == 422 and response.json()["error"]["code"] == "VALIDATION_FAILED"
    assert client.get("/v1/messages").json()["items"] == []


def test_a_reply_stays_in_its_threads_channel(world: World, client: TestClient, alice: str) -> None:
    root = post(client, alice, "a claim", channel="results")
    reply = post(client, alice, "a raw reply", thread=root["id"])
    nested = post(client, alice, "a reply to the reply", thread=reply["id"], channel="results")
    reply_file = f"---\nthread: {root['id']}\n---\nagreed".encode()
    world.write(alice, world.bucket_of("speedy"), {"posts/reply.md": reply_file})
    promoted = client.post("/v1/messages/promote", json={"agent_id": "speedy", "path": "posts/reply.md"},
                           headers=auth(alice)).json()  # fmt: skip
    assert [m["channel"] for m in (reply, nested, promoted)] == ["results"] * 3
    general = [m["id"] for m in client.get("/v1/messages", params={"channel": "general"}).json()["items"]]
    assert general == []
    elsewhere = client.post("/v1/messages", json={"agent_id": "speedy", "body": "x", "thread": root["id"],
                            "channel": "general"}, headers=auth(alice))  # fmt: skip
    assert elsewhere.status_code == 422
    error = elsewhere.json()["error"]
    assert error["code"] == "VALIDATION_FAILED" and "'results'" in error["message"]


def test_the_digest_cursor_pages_the_inbox_without_gaps_or_repeats(
    world: World, client: TestClient, alice: str
) -> None:
    bob = world.user("bob")
    world.agent(client, bob, "helper")

    def mention(body: str) -> str:
        sent = client.post("/v1/messages", json={"agent_id": "helper", "body": f"@speedy {body}"}, headers=auth(bob))
        return str(sent.json()["id"])

    sent = [mention(f"note {i}") for i in range(4)]
    seen: list[str] = []
    view = client.get("/v1/digest/speedy", params={"limit": 3}).json()["inbox"]  # pages of 3, 1
    while True:
        seen += [m["id"] for m in view["items"]]
        if not view["more"]:
            break
        view = client.get("/v1/digest/speedy", params={"limit": 3, "since": view["cursor"]}).json()["inbox"]
        assert view["items"], "more promised, nothing came"
    assert seen == sent
    quiet = client.get("/v1/digest/speedy", params={"since": view["cursor"]}).json()["inbox"]
    assert quiet == {"items": [], "cursor": sent[-1], "more": False}  # nothing new: the same cursor back
    later = mention("later")
    after = client.get("/v1/digest/speedy", params={"since": quiet["cursor"]}).json()["inbox"]
    assert [m["id"] for m in after["items"]] == [later]
    empty = client.get("/v1/digest/speedy", params={"since": ""}).json()["inbox"]  # an empty cursor: the start
    assert [m["id"] for m in empty["items"]] == [*sent, later]
    bad = client.get("/v1/digest/speedy", params={"since": "2026-01-01T00:00:00Z"})
    assert bad.status_code == 422 and "inbox.cursor" in bad.json()["error"]["hint"]
