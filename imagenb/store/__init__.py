"""The content-addressed store: files, index, provenance, archives, the images it serves."""
