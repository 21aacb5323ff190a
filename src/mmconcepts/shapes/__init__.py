"""The embedded shapes world: generator, drawing, and the tiny models trained on it.

Nothing here is needed to explain a real model; it exists so that the workflow
runs offline, on the CPU, against a ground truth.
"""
