"""GuidedMLMCollator and the saliency lexicon on real tokenised text: product titles from the
Vespa catalogue as the domain, WikiText/Brown/news prose from general_text as general text."""

from __future__ import annotations

import math
from collections import Counter

import pandas as pd
import pytest
import torch
from transformers import DataCollatorForLanguageModeling

from trainers.collator import GuidedMLMCollator, scale_to_target
from trainers.packing import PackedRows, encode_batch
from trainers.saliency import SaliencyLexicon, build_saliency_lexicon

RATE = 0.3
BATCHES, ROWS = 40, 32


@pytest.fixture(scope="module")
def corpus(shared_data):
    titles = pd.read_parquet(shared_data / "ecommerce_products_vespa" / "products.parquet", columns=["title"])
    general = pd.read_parquet(shared_data / "general_text" / "documents.parquet", columns=["text"])
    return titles["title"].sample(frac=1.0, random_state=0).tolist(), [t[:4000] for t in general["text"]]


@pytest.fixture(scope="module")
def tokenizer(corpus):
    from modeling_rexbert.tokenization import train_bpe_tokenizer

    titles, general = corpus
    return train_bpe_tokenizer(titles[:1500] + general[:150], vocab_size=2048)


@pytest.fixture(scope="module")
def lexicon(corpus, tokenizer):
    titles, general = corpus
    return build_saliency_lexicon(titles[2000:5000], general[200:500], tokenizer, min_count=5)


@pytest.fixture(scope="module")
def rows(corpus, tokenizer):
    """Held-out text packed into 128-token rows: half titles, half general prose."""
    titles, general = corpus
    ecom = PackedRows.from_texts("ecom", titles[6000:9000], tokenizer, 128)
    prose = PackedRows.from_texts("general", general[600:700], tokenizer, 128)
    count = min(len(ecom), len(prose), BATCHES * ROWS // 2)
    mixed = [
        row
        for pair in zip(list(ecom.iter_epoch(0, 0))[:count], list(prose.iter_epoch(0, 0))[:count])
        for row in pair
    ]
    assert len(mixed) >= BATCHES * ROWS
    return mixed[: BATCHES * ROWS]


def run_collator(collator, rows, seed=0, **kwargs):
    """Collate every batch; return original ids, corrupted ids, labels and attention, concatenated."""
    originals, corrupted, labels = [], [], []
    for b in range(BATCHES):
        features = rows[b * ROWS : (b + 1) * ROWS]
        generator = torch.Generator().manual_seed(seed * 10_000 + b)
        batch = collator(features, generator=generator, **{"mask_rate": RATE, **kwargs})
        original = collator.pad(features)["input_ids"]
        originals.append(original), corrupted.append(batch["input_ids"]), labels.append(batch["labels"])
    return torch.cat(originals), torch.cat(corrupted), torch.cat(labels)


def salient_ids(lexicon, threshold=2.0):
    return torch.tensor([i for i, s in lexicon.scores.items() if s >= threshold])


def test_uniform_rate_split_and_labels(tokenizer, rows):
    collator = GuidedMLMCollator(tokenizer)
    original, corrupted, labels = run_collator(collator, rows)
    masked = labels != -100
    special = collator.is_special[original]
    maskable = ~special & (original != tokenizer.pad_token_id)
    realised = masked.sum().item() / maskable.sum().item()
    assert abs(realised - RATE) < 0.01 * RATE, realised
    # special tokens never masked, labels hold the original token where masked and -100 elsewhere
    assert not (masked & special).any()
    assert torch.equal(labels[masked], original[masked])
    assert torch.equal(corrupted[~masked], original[~masked])
    # 80 / 10 / 10
    n = masked.sum().item()
    to_mask = (corrupted[masked] == tokenizer.mask_token_id).sum().item() / n
    kept = (corrupted[masked] == original[masked]).sum().item() / n
    assert abs(to_mask - 0.8) < 0.01 and abs(kept - 0.1) < 0.01 and abs(1 - to_mask - kept - 0.1) < 0.01
    assert not collator.is_special[corrupted[masked & (corrupted != tokenizer.mask_token_id)]].any()


def test_uniform_matches_transformers_reference(tokenizer, rows):
    """Same realised rate and split as transformers' DataCollatorForLanguageModeling."""
    torch.manual_seed(0)
    reference = DataCollatorForLanguageModeling(tokenizer, mlm_probability=RATE)
    ref_masked = ref_total = ref_mask_token = 0
    for b in range(BATCHES):
        batch = reference(
            [{"input_ids": list(map(int, r["input_ids"]))} for r in rows[b * ROWS : (b + 1) * ROWS]]
        )
        special = torch.tensor(
            [
                tokenizer.get_special_tokens_mask(ids, already_has_special_tokens=True)
                for ids in batch["labels"].where(batch["labels"] != -100, batch["input_ids"]).tolist()
            ]
        )
        masked = batch["labels"] != -100
        ref_masked += masked.sum().item()
        ref_total += (special == 0).sum().item()
        ref_mask_token += (batch["input_ids"][masked] == tokenizer.mask_token_id).sum().item()
    ours_original, ours_corrupted, ours_labels = run_collator(GuidedMLMCollator(tokenizer), rows)
    ours_masked = ours_labels != -100
    ours_rate = ours_masked.sum().item() / (ours_original >= 5).sum().item()  # ids 0..4 are the specials
    assert abs(ours_rate - ref_masked / ref_total) < 0.006
    ours_split = (ours_corrupted[ours_masked] == tokenizer.mask_token_id).float().mean().item()
    assert abs(ours_split - ref_mask_token / ref_masked) < 0.015


@pytest.mark.parametrize("whole_word", [False, True])
def test_guided_keeps_rate_and_favours_salient_tokens(tokenizer, rows, lexicon, whole_word):
    salient = salient_ids(lexicon)
    fractions = {}
    for guidance in (0.0, 1.0):
        collator = GuidedMLMCollator(tokenizer, lexicon=lexicon, temperature=2.0, whole_word=whole_word)
        original, _, labels = run_collator(collator, rows, guidance=guidance)
        masked = labels != -100
        maskable = ~collator.is_special[original]
        is_salient = torch.isin(original, salient) & maskable
        realised = masked.sum().item() / maskable.sum().item()
        assert abs(realised - RATE) < 0.01 * RATE, (guidance, realised)
        fractions[guidance] = masked[is_salient].float().mean().item()
        assert is_salient.sum() > 2000
    # weight 0: salient tokens are masked at the plain rate; weight 1: clearly more often
    assert abs(fractions[0.0] - RATE) < 0.02
    assert fractions[1.0] > 1.5 * fractions[0.0], fractions


def test_weight_zero_is_exactly_uniform_mlm(tokenizer, rows, lexicon):
    plain = GuidedMLMCollator(tokenizer)
    guided_off = GuidedMLMCollator(tokenizer, lexicon=lexicon)
    features = rows[:ROWS]
    a = plain(features, mask_rate=RATE, generator=torch.Generator().manual_seed(3))
    b = guided_off(features, mask_rate=RATE, guidance=0.0, generator=torch.Generator().manual_seed(3))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("guidance,whole_word", [(0.0, True), (0.5, False), (1.0, True), (1.0, False)])
def test_expected_rate_per_sequence_is_exact(tokenizer, rows, lexicon, guidance, whole_word):
    collator = GuidedMLMCollator(tokenizer, lexicon=lexicon, temperature=0.5, whole_word=whole_word)
    batch = collator.pad(rows[:ROWS])
    maskable = batch["attention_mask"].bool() & ~collator.is_special[batch["input_ids"]]
    prob = collator.masking_probabilities(batch["input_ids"], maskable, RATE, guidance)
    assert prob.max() <= 1.0 + 1e-6 and prob.min() >= 0 and not prob[~maskable].any()
    torch.testing.assert_close(prob.sum(1), RATE * maskable.sum(1).float(), rtol=1e-4, atol=1e-3)
    if whole_word:  # the tokens of a word share its probability
        unit = collator.unit_index(batch["input_ids"], maskable)
        flat, keep = prob.flatten(), maskable.flatten()
        highest = torch.zeros(int(unit[-1]) + 1).scatter_reduce_(0, unit[keep], flat[keep], "amax")
        torch.testing.assert_close(flat[keep], highest[unit[keep]])
    if guidance == 1.0:  # steep saliency at temperature 0.5: some units hit the cap of 1
        assert (prob >= 1.0 - 1e-6).any()


def test_whole_word_masks_words_whole(tokenizer, rows):
    collator = GuidedMLMCollator(tokenizer, whole_word=True)
    batch = collator.pad(rows[:ROWS])
    maskable = batch["attention_mask"].bool() & ~collator.is_special[batch["input_ids"]]
    masked = collator.select_positions(
        batch["input_ids"], maskable, RATE, 0.0, torch.Generator().manual_seed(0)
    )
    unit = collator.unit_index(batch["input_ids"], maskable)
    flat = masked.flatten()
    per_unit_any = torch.zeros(int(unit[-1]) + 1, dtype=torch.bool).index_put_((unit,), flat, accumulate=True)
    # a token of a masked word that is maskable must be masked too
    assert torch.equal(flat | ~maskable.flatten(), per_unit_any[unit] | ~maskable.flatten())
    pieces = Counter(unit[flat].tolist())
    assert max(pieces.values()) > 1  # multi-piece words exist and were masked whole


def testscale_to_target_caps_and_keeps_row_mass():
    weight = torch.tensor([[3.0, 0.2, 0.2, 0.2, 0.1], [0.5, 0.5, 0.0, 0.0, 0.0]])
    target = torch.tensor([2.0, 1.0])
    prob = scale_to_target(weight.clone(), target)  # works in place
    assert prob.max() <= 1 and prob[0, 0] == 1 and not prob[1, 2:].any()
    torch.testing.assert_close(prob.sum(1), target)
    # the uncapped tokens keep their relative weights: row 0 spreads 1.0 over weights summing to 0.7
    torch.testing.assert_close(prob[0, 1:], weight[0, 1:] / 0.7)


def test_lexicon_scores_match_a_direct_count(corpus, tokenizer, lexicon, tmp_path):
    titles, general = corpus
    domain = Counter(i for ids in encode_batch(tokenizer, titles[2000:5000], False) for i in ids)
    general_counts = Counter(i for ids in encode_batch(tokenizer, general[200:500], False) for i in ids)
    n_d, n_g, vocab = sum(domain.values()), sum(general_counts.values()), len(tokenizer)
    for token_id, score in list(lexicon.scores.items())[:50]:
        expected = math.log((domain[token_id] + 1) / (n_d + vocab)) - math.log(
            (general_counts[token_id] + 1) / (n_g + vocab)
        )
        assert score == pytest.approx(expected, rel=1e-9)
        assert domain[token_id] >= 5
    # words only: every listed token has a letter or digit, and punctuation-heavy titles had candidates
    assert all(
        any(c.isalnum() for c in tokenizer.convert_tokens_to_string([t])) for t in lexicon.tokens.values()
    )
    top = [tok for tok, _ in lexicon.top(30)]
    assert sum(general_counts[tokenizer.convert_tokens_to_ids(t)] for t in top) < sum(
        domain[tokenizer.convert_tokens_to_ids(t)] for t in top
    )
    path = lexicon.save(tmp_path)
    assert path.name == "saliency_lexicon.json"
    loaded = SaliencyLexicon.load(tmp_path, tokenizer)
    assert loaded.tokens == lexicon.tokens
    assert torch.allclose(loaded.as_tensor(), lexicon.as_tensor(), atol=1e-5)


def test_lexicon_from_another_tokenizer_is_refused(corpus, lexicon, tmp_path):
    from modeling_rexbert.tokenization import train_bpe_tokenizer

    other = train_bpe_tokenizer(corpus[1][:40], vocab_size=600)
    lexicon.save(tmp_path)
    with pytest.raises(ValueError, match="another tokenizer"):
        SaliencyLexicon.load(tmp_path, other)


def test_bad_settings_are_refused(tokenizer, lexicon):
    features = [{"input_ids": [tokenizer.cls_token_id, 100, 101, tokenizer.sep_token_id]}]
    with pytest.raises(ValueError, match="needs a saliency lexicon"):
        GuidedMLMCollator(tokenizer)(features, mask_rate=0.3, guidance=0.5)
    with pytest.raises(ValueError, match="mask rate must be in"):
        GuidedMLMCollator(tokenizer)(features, mask_rate=1.5)
    with pytest.raises(ValueError, match="guidance .* must be in"):
        GuidedMLMCollator(tokenizer, lexicon=lexicon)(features, mask_rate=0.3, guidance=2.0)
    with pytest.raises(ValueError, match="no tokens"):
        build_saliency_lexicon(["", "  "], ["some general text"], tokenizer)
