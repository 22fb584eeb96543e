"""Judging images: rubric verdicts from a vision model, pairwise comparisons, rankings, and people's own star ratings beside them."""
