"""Grids through the OpenAI Batch API at half the price, resumable across restarts."""
