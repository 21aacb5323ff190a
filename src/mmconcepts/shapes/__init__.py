"""Data sets: the generated shapes world and a reader for Karpathy-format caption files."""
