"""Presentation helpers every feature uses: escaped HTML cards and thumbnails, contact sheets."""
