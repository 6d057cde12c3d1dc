"""One provisioning run's preparation: spec, token, identity, desired state, observed state, plan.

The order is the safety: the spec is validated before any network call, and the token is
checked with whoami before any resource is read.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from provision.hub.client import HubClient
from provision.hub.credentials import Identity, Token, check_identity, find_token
from provision.paths import spec_path
from provision.plan.compute import Plan, compute_plan
from provision.plan.desired import Desired, desired_state
from provision.plan.observe import Observed, observe
from provision.spec import LoadedSpec, load_spec


@dataclass(frozen=True)
class Session:
    collab_dir: Path
    loaded: LoadedSpec
    token: Token
    identity: Identity
    desired: Desired
    observed: Observed
    plan: Plan


def prepare(
    target: str | Path,
    hub: HubClient,
    *,
    adopt: bool = False,
    overwrite_readme: bool = False,
    environ: Mapping[str, str] | None = None,
) -> Session:
    """Load, authenticate, read back and plan.

    Args:
        target: The collab folder (or its challenge.yaml).
        hub: The Hub client.
        adopt: Take over existing resources without an ownership mark.
        overwrite_readme: Replace an organizer's edit of the onboarding README.
        environ: The environment to read HF_TOKEN from (default: the process's).

    Raises:
        SpecError, CredentialsError, SourcesError, HubAccessError: each with the fix in its message.
    """
    loaded = load_spec(target)
    collab_dir = spec_path(target).parent
    token = find_token(collab_dir, environ)
    identity = check_identity(hub, token)
    desired = desired_state(loaded, collab_dir, token.reveal())
    observed = observe(hub, token.reveal(), identity, desired)
    plan = compute_plan(desired, observed, adopt=adopt, overwrite_readme=overwrite_readme)
    return Session(collab_dir, loaded, token, identity, desired, observed, plan)
