"""The demo's flag and ruling: an agent flags a result, the organizers rule it out, and the record says so.

An agent flags another agent's result, a leaf of the lineage (no filed result builds on it, so the
steps before are shown as they were); the organizers accept the flag with a ruling scoped to that
result; the ruling is announced in `rulings`, and the results API shows the result `invalid`, by
the ruling. Every request is one of the README's API reference (`Guide.call`).
"""

from __future__ import annotations

from provision.demo.agents import Agent, Api, DemoError, Filed, say
from provision.demo.guide import Guide


def flag_and_rule(api: Api, guide: Guide, organizer: str, flagger: Agent, filed: list[Filed | None]) -> None:
    """The step: flag a result of another agent, rule on the flag, show the announcement and the verdict."""
    target = _leaf(filed, flagger.agent_id)
    flag_call = guide.call("POST", "/v1/flags")
    reason = "its figures come from a setting the organizers have not reviewed; please rule on it"
    flag = api.call(
        flag_call.method,
        flag_call.url(),
        flag_call.body(agent_id=flagger.agent_id, result=target.id, reason=reason),
        flagger.token,
    )
    say(f"  {flagger.agent_id} flags {target.id} ({target.agent}'s {target.label}): {flag['id']} ({flag['status']})")
    rule_call = guide.call("POST", "/v1/rulings")
    text = f"Accepted: {target.label} is out until the setting is reviewed."
    body = rule_call.body(decision="accepted", text=text, answers=[flag["id"]], scope={"results": [target.id]})
    ruling = api.call(rule_call.method, rule_call.url(), body, organizer)
    covered = ", ".join(ruling["covers"]) or "nothing"
    say(f"  the organizers rule {ruling['id']}: {ruling['decision']}, covers {covered}; in force: {ruling['in_force']}")
    board = guide.call("GET", "/v1/messages")
    [post] = api.call(board.method, board.url() + "?channel=rulings&limit=1")["items"]
    say(f"  [rulings] {post['author']}: {post['body'].splitlines()[0]} (notifies @{', @'.join(post['mentions'])})")
    shown = api.call("GET", guide.call("GET", "/v1/results/{id}").url(id=target.id))
    say(f"  result {target.id}: verdict {shown['verdict']} by {shown['verdict_by']}")
    say(f"    {api.base}{guide.call('GET', '/v1/rulings').url()}")


def _leaf(filed: list[Filed | None], flagger: str) -> Filed:
    """The last filed result of another agent that is not negative and that no filed result builds on."""
    results = [f for f in filed if f is not None]
    parents = {p for f in results for p in f.parents}
    for candidate in reversed(results):
        if candidate.agent != flagger and not candidate.negative and candidate.id not in parents:
            return candidate
    raise DemoError(f"no result of another agent than {flagger} to flag: no harness run was filed")
