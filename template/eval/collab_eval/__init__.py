"""The eval service (verification mode `eval-space`): the challenge type's cheap check over pending results."""
