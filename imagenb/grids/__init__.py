"""Dataframes of prompts into live image grids, contact sheets and pages."""
