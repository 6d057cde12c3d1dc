"""Benchmark jobs: where they live (paths.py), what runs them (launchers), and how a summary is checked.

Kept free of imports so that the record's entries can use the path conventions without loading a
launcher.
"""
