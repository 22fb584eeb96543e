"""Did the model spell it right? OCR text checks in Latin, CJK, Devanagari and Bengali."""
