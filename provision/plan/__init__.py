"""Provisioning as plan and apply: desired state, read-back, the pure plan, apply, views, seed, teardown.

`desired` derives what should exist from the spec; `observe` reads the Hub back; `compute` is the
pure plan between them; `apply` carries it out; `views` shows a plan or a status as text or JSON;
`seed` plans and writes the central bucket's seeded files; `session` prepares one run (spec,
token, identity, plan) and `destroy` tears down what a collab marked. Imports the spec, the
challenge types, `provision.hub`, the onboarding README and the bottom modules; the local target
reuses its desired state, bucket plan and views.
"""
