"""Shared code of the SRCNN-style super-resolution scripts: pure functions, no argument parsing."""
