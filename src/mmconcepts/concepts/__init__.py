"""CoX-LMM: caption, select, extract, decompose, ground and score the concepts of one word."""
