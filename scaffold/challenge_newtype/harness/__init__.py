"""The newtype harness: run.py and the data it reads, uploaded together as one folder."""
