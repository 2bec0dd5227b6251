"""`GuidedMLMCollator`: masked-language-model batches whose masked positions lean toward
domain-salient tokens, at an unchanged expected masking rate.

Selection works on *units*: single tokens, or whole words with `whole_word=True` (a word is a
token that starts one plus the continuation pieces after it, so a salient brand or unit is masked
whole). For every row:

1. each maskable unit (not special, not padding) gets a relative weight
   `r = (1 - guidance) + guidance * g`, where `g = exp(saliency / temperature)` is normalised to a
   token-weighted mean of 1 over the row and the saliency of a word is that of its most salient
   token (0 without a lexicon or for unlisted tokens);
2. its masking probability is `p = min(1, c * r)`, with the row's scale `c` chosen so that the
   expected number of masked tokens in the row is exactly `rate * maskable tokens` (without any
   cap, `p = rate * r`; units pushed above 1 are capped and their excess goes to the other units
   in proportion to their weight);
3. units are drawn independently with probability `p`.

`guidance=0` gives every unit `p = rate`: plain uniform MLM (token-level, or whole-word with
`whole_word=True`). Masked tokens become `[MASK]` 80% of the time, a random non-special token 10%
and stay unchanged 10%; `labels` hold the original id at masked positions and -100 elsewhere.

Everything is a handful of tensor ops over the batch (no Python loop over tokens), and a
`torch.Generator` can be passed per call so a batch is a pure function of its seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .saliency import SaliencyLexicon

__all__ = ["GuidedMLMCollator", "scale_to_target", "special_token_table", "word_start_table"]

_WORD_PREFIXES = ("Ġ", "▁", "Ċ", " ")
"""Marks of a leading space or newline in byte-level BPE / SentencePiece vocabularies."""


def word_start_table(tokenizer) -> torch.Tensor:
    """Bool per token id: does this token begin a new word?

    WordPiece vocabularies mark continuations with `##`. For byte-level BPE / SentencePiece, a
    token begins a word when it carries the leading-space mark or starts with a character that is
    not a letter or digit (punctuation is its own word); other tokens continue the previous word.
    """
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    wordpiece = any(tok.startswith("##") for tok in tokens if tok)
    if wordpiece:
        starts = [not (tok or "").startswith("##") for tok in tokens]
    else:
        starts = [not tok or tok.startswith(_WORD_PREFIXES) or not tok[0].isalnum() for tok in tokens]
    return torch.tensor(starts, dtype=torch.bool)


def special_token_table(tokenizer) -> torch.Tensor:
    """Bool per token id: special tokens (named ones and every added token marked special)."""
    special = torch.zeros(len(tokenizer), dtype=torch.bool)
    ids = set(tokenizer.all_special_ids)
    ids.update(i for i, tok in tokenizer.added_tokens_decoder.items() if tok.special)
    special[[i for i in ids if i < len(tokenizer)]] = True
    return special


class GuidedMLMCollator:
    """Pads packed rows and masks them for MLM, optionally guided by a saliency lexicon.

    The masking rate and the guidance weight are given per call (`collator(rows, mask_rate=0.3,
    guidance=0.5)`): they follow the phase's schedules, which the `MixtureStream` owns and evaluates per batch.

    Args:
        tokenizer: provides the pad/mask ids, the special tokens and the vocabulary.
        lexicon: saliency lexicon (`build_saliency_lexicon`); needed for calls with `guidance > 0`.
        temperature: divides saliency scores before exponentiation (higher = gentler guidance).
        whole_word: select whole words instead of single tokens.
        mask_token_fraction / random_token_fraction: the 80/10/10 split of masked tokens.
        pad_to_multiple_of: round the padded length up to a multiple of this.

    Features are mappings with `input_ids` (and optionally `position_ids` and an int `source`), as
    produced by the packing module. The output holds `input_ids`, `attention_mask`, `labels`, the
    padded `position_ids` when given, and `source_ids` (one per row) when the rows name a source.
    """

    def __init__(
        self,
        tokenizer,
        lexicon: SaliencyLexicon | None = None,
        temperature: float = 1.0,
        whole_word: bool = False,
        mask_token_fraction: float = 0.8,
        random_token_fraction: float = 0.1,
        pad_to_multiple_of: int | None = None,
    ):
        if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs a mask token and a pad token for MLM")
        if mask_token_fraction + random_token_fraction > 1:
            raise ValueError("mask_token_fraction + random_token_fraction must not exceed 1")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature}")
        self.tokenizer = tokenizer
        self.temperature, self.whole_word = temperature, whole_word
        self.lexicon = lexicon
        self.mask_token_fraction, self.random_token_fraction = mask_token_fraction, random_token_fraction
        self.pad_to_multiple_of = pad_to_multiple_of
        self.pad_id, self.mask_id = tokenizer.pad_token_id, tokenizer.mask_token_id
        self.is_special = special_token_table(tokenizer)
        self.random_ids = torch.nonzero(~self.is_special).flatten()
        self.starts_word = word_start_table(tokenizer) if whole_word else None
        self.steer = None  # exp(saliency / temperature) per token id, looked up per batch
        if lexicon is not None:
            self.steer = torch.exp(lexicon.as_tensor(max(len(tokenizer), lexicon.vocab_size)) / temperature)

    # ---- batching -------------------------------------------------------------------------------

    def __call__(
        self,
        features: Sequence[Mapping],
        *,
        mask_rate: float,
        guidance: float = 0.0,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """Collate `features`, masking `mask_rate` of the maskable tokens with `guidance` toward salient ones."""
        rate = _check_fraction("mask rate", mask_rate)
        weight = _check_guidance(guidance, self.lexicon)
        batch = self.pad(features)
        maskable = batch["attention_mask"].bool() & ~_lookup(self.is_special, batch["input_ids"])
        masked = self.select_positions(batch["input_ids"], maskable, rate, weight, generator)
        batch["input_ids"], batch["labels"] = self.corrupt(batch["input_ids"], masked, generator)
        return batch

    def pad(self, features: Sequence[Mapping]) -> dict[str, torch.Tensor]:
        """Right-pad `input_ids` (and `position_ids`) to the longest row; build the attention mask."""
        rows = [np.asarray(f["input_ids"], dtype=np.int64) for f in features]
        lengths = np.array([len(r) for r in rows])
        width = int(lengths.max())
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        attention = np.arange(width)[None, :] < lengths[:, None]
        ids[attention] = np.concatenate(rows)
        batch = {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(attention.astype(np.int64)),
        }
        if "position_ids" in features[0]:
            positions = np.zeros((len(rows), width), dtype=np.int64)
            positions[attention] = np.concatenate([np.asarray(f["position_ids"]) for f in features])
            batch["position_ids"] = torch.from_numpy(positions)
        if "source" in features[0]:
            batch["source_ids"] = torch.tensor([int(f["source"]) for f in features], dtype=torch.long)
        return batch

    # ---- masking --------------------------------------------------------------------------------

    def select_positions(
        self,
        input_ids: torch.Tensor,
        maskable: torch.Tensor,
        rate: float,
        guidance: float,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Bool tensor of the positions to mask (see the module docstring for the rule)."""
        unit = self.unit_index(input_ids, maskable) if self.whole_word else None
        prob = self.masking_probabilities(input_ids, maskable, rate, guidance, unit)
        if unit is not None:  # one draw per word, shared by its tokens (which share its probability)
            draw = _lookup(torch.rand(int(unit[-1]) + 1, generator=generator), unit.view(input_ids.shape))
        else:
            draw = torch.rand(input_ids.shape, generator=generator)
        return draw < prob  # prob is 0 wherever the token is not maskable

    def masking_probabilities(
        self,
        input_ids: torch.Tensor,
        maskable: torch.Tensor,
        rate: float,
        guidance: float,
        unit: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Masking probability of every token (its unit's probability; 0 where not maskable).
        `unit` is the word index from `unit_index` (computed here when needed and not given).

        All tokens of a unit share its weight, so the per-row sums, the cap and the rescaling can run
        on the `(batch, seq)` grid: a row's sum over tokens is the sum over units of size x probability.
        """
        maskable_f = maskable.float()
        if guidance == 0 or self.steer is None:
            return rate * maskable_f
        steer = _lookup(self.steer, input_ids)
        if self.whole_word:  # a word is as salient as its most salient piece (exp is monotonic)
            unit = self.unit_index(input_ids, maskable) if unit is None else unit
            per_unit = torch.zeros(int(unit[-1]) + 1).scatter_reduce_(0, unit, steer.flatten(), "amax")
            steer = _lookup(per_unit, unit.view(input_ids.shape))
        steer.mul_(maskable_f)
        row_tokens = maskable_f.sum(1)
        if guidance < 1:  # (1 - guidance) + guidance * steer normalised to a token mean of 1 per row
            steer_scale = guidance * row_tokens / steer.sum(1).clamp(min=1e-12)
            steer = maskable_f.mul_(1 - guidance).addcmul_(steer, steer_scale[:, None])
        return scale_to_target(steer, rate * row_tokens)

    def unit_index(self, input_ids: torch.Tensor, maskable: torch.Tensor) -> torch.Tensor:
        """Flat word id per token: words never span rows or non-maskable tokens."""
        starts = _lookup(self.starts_word, input_ids) | ~maskable
        starts[:, 1:] |= ~maskable[:, :-1]
        starts[:, 0] = True
        return torch.cumsum(starts.flatten(), 0) - 1

    def corrupt(
        self, input_ids: torch.Tensor, masked: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """80/10/10 replacement of the masked positions; returns (corrupted ids, labels)."""
        labels = torch.where(masked, input_ids, torch.full_like(input_ids, -100))
        draw = torch.rand(input_ids.shape, generator=generator)
        to_mask = masked & (draw < self.mask_token_fraction)
        to_random = (
            masked
            & (draw >= self.mask_token_fraction)
            & (draw < self.mask_token_fraction + self.random_token_fraction)
        )
        corrupted = input_ids.masked_fill(to_mask, self.mask_id)
        picks = torch.randint(len(self.random_ids), (int(to_random.sum()),), generator=generator)
        corrupted[to_random] = self.random_ids[picks]
        return corrupted, labels


def scale_to_target(weight: torch.Tensor, row_target: torch.Tensor, rounds: int = 20) -> torch.Tensor:
    """Probabilities `min(1, c * weight)` with one scale `c` per row chosen so that each row sums to
    `row_target` (reachable whenever the rate is <= 1).

    `c` is found by Newton's method on the concave, piecewise-linear row sum, starting from the
    uncapped scale: each round caps the tokens at or above 1 and spreads the rest of the target over
    the others; the capped set only grows, and once no other token reaches 1 `c` is exact. A few
    rounds suffice in practice, each a handful of ops over the batch.
    """
    scale = row_target / weight.sum(1).clamp(min=1e-12)
    for _ in range(rounds):
        capped = weight * scale[:, None] >= 1
        free = torch.where(capped, 0.0, weight)
        scale = (row_target - capped.sum(1)) / free.sum(1).clamp(min=1e-12)
        if not bool((free.amax(1) * scale >= 1).any()):  # no uncapped token reaches 1: exact
            break
    return weight.mul_(scale[:, None]).clamp_(max=1)


def _lookup(table: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """`table[ids]` through `index_select`, several times faster than advanced indexing on CPU."""
    return table.index_select(0, ids.flatten()).view(ids.shape)


def _check_fraction(what: str, value: float) -> float:
    """Rates reach the collator from a checked `ScalarSchedule`; direct callers get the same rule."""
    if not 0 <= value <= 1:
        raise ValueError(f"{what} must be in [0, 1], got {value}")
    return value


def _check_guidance(guidance: float, lexicon: SaliencyLexicon | None) -> float:
    _check_fraction("guidance (0 uniform, 1 fully guided)", guidance)
    if guidance > 0 and lexicon is None:
        raise ValueError(
            "guided masking (guidance > 0) needs a saliency lexicon; build one with build_saliency_lexicon"
        )
    return guidance
