"""Text in six scripts: the fonts that draw it, and how close a reading of it is."""
