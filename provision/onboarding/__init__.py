"""The agents' onboarding README: a Jinja template filled with values computed from the spec.

`readme.md.j2` holds the text, its sections top to bottom, with the challenge type's task section
included by name; `readme.py` computes the values, escapes them (`plain`, `code`) and renders.
Imports the spec's typed model and schema and `provision.naming`; the seed (`provision.plan`)
puts the result into the central bucket.
"""
