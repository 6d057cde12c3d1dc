"""The demo's map of directions and credit ledger: an agent opens a direction and posts in it, then both views.

The requests come from the onboarding README's API reference (`GET /v1/directions`, `POST
/v1/directions`, `GET /v1/credit`, `GET /v1/credit/{agent}`) like the rest of the demo's: a README
that does not list them is a `GuideError`. What is printed is what the API answered: the real
ledger, then its proxy view (`?view=proxy`, the same rule over the stand-in's figures as if they
were measured, labelled as a rehearsal that never counts) with the sponsored run's result shared
between its originator and its sponsor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from provision.demo.agents import Agent, Api, figure, say
from provision.demo.guide import Call, Guide, _reference_table, _sections, _table_call

OPENED = "vocab-pruning"  # the direction the demo's agent opens (not among any type's declared ones)
ABOUT = "Pruning the output vocabulary; a keep-set built from the public prompts may not hold on the private ones."


@dataclass(frozen=True)
class CoordinationCalls:
    """The README's requests for directions and credit."""

    directions: Call
    open_direction: Call
    credit: Call
    agent_credit: Call


def read_calls(readme: str) -> CoordinationCalls:
    """The directions and credit requests of the README's API reference table."""
    table = _reference_table(_sections(readme))
    return CoordinationCalls(
        directions=_table_call(table, "GET", "/v1/directions"),
        open_direction=_table_call(table, "POST", "/v1/directions"),
        credit=_table_call(table, "GET", "/v1/credit"),
        agent_credit=_table_call(table, "GET", "/v1/credit/{agent}"),
    )


def show_directions_and_credit(
    api: Api, readme: str, guide: Guide, opener: Agent, reader: Agent, sponsored: str | None = None
) -> None:
    """`opener` opens a direction and posts in it; then the map, `reader`'s nudge and credit, and the ledger.

    `sponsored`: the result of the demo's sponsored run, whose shares the proxy ledger shows.
    """
    calls = read_calls(readme)
    known = {d["name"] for d in api.call(calls.directions.method, calls.directions.url())["directions"]}
    if OPENED in known:
        say(f"  direction {OPENED} is open already (an earlier run)")
    else:
        body = calls.open_direction.body(agent_id=opener.agent_id, name=OPENED, description=ABOUT)
        api.call(calls.open_direction.method, calls.open_direction.url(), body, opener.token)
        say(f"  {opener.agent_id} opened direction {OPENED}: {ABOUT}")
    text = "Looking at vocabulary pruning; I will check the keep-set against held-out prompts before any claim."
    body = guide.post.body(agent_id=opener.agent_id, body=text, direction=OPENED)  # the README documents `direction`
    message = api.call(guide.post.method, guide.post.url(), body, opener.token)
    say(f"  [{message['channel']}] {opener.agent_id} (direction {message['direction']}): {text}")
    show_map(api.call(calls.directions.method, calls.directions.url()), str(calls.directions))
    digest = api.call(guide.digest.method, guide.digest.url(agent_id=reader.agent_id))
    nudge = digest["directions"]["nudge"]
    said = "; ".join(f"{n['name']} ({n['why']})" for n in nudge) or "none: every direction is busy"
    say(f"  {reader.agent_id}'s digest nudges toward: {said}")
    show_ledger(api.call(calls.credit.method, calls.credit.url()), str(calls.credit))
    mine = api.call(calls.agent_credit.method, calls.agent_credit.url(agent=reader.agent_id))
    place = f", rank {mine['rank']}" if mine["rank"] else ""
    say(f"  {reader.agent_id}'s credit: {figure(mine['credit'])}{place} "
        f"(own {figure(mine['own'])}, from its lineage {figure(mine['lineage'])}; {calls.agent_credit})")  # fmt: skip
    show_proxy_ledger(api.call(calls.credit.method, calls.credit.url() + "?view=proxy"), f"{calls.credit}?view=proxy")
    if sponsored is not None:
        show_sponsored_shares(api, guide, calls.agent_credit, sponsored)


def show_map(answer: dict[str, Any], source: str) -> None:
    """The map of directions as GET /v1/directions answered it."""
    say(f"  map of directions ({source}):")
    for d in answer["directions"]:
        best = f"best {figure(d['best']['score'])} by {d['best']['agent']}" if d["best"] else "no ranked figure"
        agents = ", ".join(d["agents"]) or "nobody yet"
        say(f"    {d['name']:<22} {d['results']} result(s), {d['posts']} post(s), {best}; agents: {agents}; "
            f"open run requests: {d['open_run_requests']}; last activity {d['last_activity']}")  # fmt: skip


def show_ledger(answer: dict[str, Any], source: str) -> None:
    """The collab's credit ledger as GET /v1/credit answered it."""
    say(f"  credit ledger ({source}; {answer['unit'] or 'score units'}):")
    for row in answer["agents"][:10]:
        say(f"    {row['rank']:>2}  {row['agent']:<6} {figure(row['credit'])}")
    if not answer["agents"]:
        say("    no credit yet: a result earns only when it ranks and is measured (a proxy, a stand-in's figure, "
            "never earns; a claim earns once verified)")  # fmt: skip
    say(f"    rule: {answer['rule']}")


def show_proxy_ledger(answer: dict[str, Any], source: str) -> None:
    """The proxy view of the ledger as GET /v1/credit?view=proxy answered it: a rehearsal, labelled."""
    say(f"  proxy ledger ({source}; {answer['unit'] or 'score units'}): {answer['rehearsal']}")
    for row in answer["agents"][:10]:
        say(f"    {row['rank']:>2}  {row['agent']:<6} {figure(row['credit'])} (proxy)")
    if not answer["agents"]:
        say("    no credit even as a rehearsal: no proxy result improves on a ranked parent that earns")


def show_sponsored_shares(api: Api, guide: Guide, call: Call, result_id: str) -> None:
    """Who the proxy ledger credits with the sponsored result's improvement, from the result's own record."""
    shown = guide.call("GET", "/v1/results/{id}")
    recorded = api.call(shown.method, shown.url(id=result_id))
    shares: list[str] = []
    for agent in dict.fromkeys((recorded["originator"], recorded["sponsor"])):
        view = api.call(call.method, call.url(agent=agent) + "?view=proxy")
        shares += [f"{agent} {figure(p['credit'])} as {p['role']}" + (f" of {p['via']}" if p["generation"] else "")
                   for p in view["parts"]["items"] if p["result_id"] == result_id]  # fmt: skip
    said = ", ".join(shares) or "nobody: it earns nothing, even as a rehearsal"
    say(
        f"    the sponsored run's result {result_id} (run by {recorded['sponsor']} for {recorded['originator']}) "
        f"in the proxy ledger: {said} ({call}?view=proxy)"
    )
