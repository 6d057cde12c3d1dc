"""The scripted demo: `python -m provision.demo` brings a collab up locally and plays agents through its API.

`run` brings the collab up, plays the script and stops everything it started; `script` is what
the organizer and the agents do, step by step, and `job` its benchmark job; `agents` is what they
act with (the API on loopback, their scratch buckets, the harness, result files); `views` prints
the leaderboard, the proxy view and the lineage; `guide` reads every request from the seeded
onboarding README. The top layer beside `provision.cli`: it may import the local target and
everything below it, and nothing imports it.
"""
