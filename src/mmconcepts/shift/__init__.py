"""Representation shift between an original and a fine-tuned model (Khayatan et al., ICCV 2025)."""
