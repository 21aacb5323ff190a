"""Loaders of the data sets the systems run on (Karpathy caption files, ...)."""
