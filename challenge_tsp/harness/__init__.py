"""The tsp harness: run.py and the public instance it scores tours on (uploaded as one folder)."""
