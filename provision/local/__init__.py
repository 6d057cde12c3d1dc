"""The local target: the same collab on one machine, its buckets as folders and the backend as a process.

`target` plans and applies the folder hub and the local identities with the plan engine's
desired state and bucket plan; `folder_hub` answers the bucket calls the seed makes; `processes`
starts, records and stops the backend; `status` reports health and drift. Imports the plan engine
and what lies below it; the command line and the demo build on it.
"""
