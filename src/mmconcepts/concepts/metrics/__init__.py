"""Concept-dictionary metrics of DESIGN.md: CLIPScore, BERTScore, Overlap, Recovery."""

from mmconcepts.concepts.metrics.bertscore import BertScorer
from mmconcepts.concepts.metrics.clipscore import ClipScorer, clip_score, concept_text
from mmconcepts.concepts.metrics.overlap import overlap
from mmconcepts.concepts.metrics.recovery import probe_auroc, recovery
from mmconcepts.concepts.metrics.summary import mean_std

__all__ = ["BertScorer", "ClipScorer", "clip_score", "concept_text", "mean_std", "overlap", "probe_auroc", "recovery"]
