"""The `imagenb` command: generate, grids, batches, the store and the fake server."""
