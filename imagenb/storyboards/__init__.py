"""Storyboards: characters generated once, panels as edits that carry them."""
