"""CLIP's zero-shot decisions explained by the concepts its two encoders share (Sammani & Deligiannis)."""
