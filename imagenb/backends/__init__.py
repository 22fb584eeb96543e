"""Backends: the one seam between imagenb and whatever makes the pixels (see `base.Backend`)."""
