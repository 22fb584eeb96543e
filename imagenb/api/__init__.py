"""The Python API: generate, edit, estimate, start, history and spent, with live progress."""
