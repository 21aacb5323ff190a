"""Concept-dictionary metrics of DESIGN.md: CLIPScore, BERTScore, Overlap, Recovery."""

from mmconcepts.metrics.bertscore import BertScorer
from mmconcepts.metrics.clipscore import ClipScorer, clip_score, concept_text
from mmconcepts.metrics.overlap import overlap
from mmconcepts.metrics.recovery import recovery
from mmconcepts.metrics.summary import mean_std

__all__ = ["BertScorer", "ClipScorer", "clip_score", "concept_text", "mean_std", "overlap", "recovery"]

