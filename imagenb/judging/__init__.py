"""Judging images: rubric verdicts, pairwise comparisons, rankings, and people's stars."""
