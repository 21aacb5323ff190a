"""Steering: vectors added to one layer to change what a model says (Khayatan et al., ICCV 2025)."""
