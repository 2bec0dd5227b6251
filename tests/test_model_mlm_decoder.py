"""The fused MLM decoder + cross-entropy (`modeling_rexbert.mlm_decoder`) against `F.linear` + `F.cross_entropy`."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import ModernBertForMaskedLM

from modeling_rexbert import RexBertForMaskedLM, mlm_decoder
from modeling_rexbert.modeling_rexbert import pack_batch
from tests.model_helpers import paired_models, random_batch, tiny_config

HIDDEN, VOCAB = 16, 300


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few rows / columns, so every loop runs several steps and ends on a partial block."""
    monkeypatch.setattr(mlm_decoder, "_CPU_BLOCK_BYTES", 4 * 7 * VOCAB)


def _parameters(dtype=torch.float32, bias=True, seed=0):
    generator = torch.Generator().manual_seed(seed)
    weight = (torch.randn(VOCAB, HIDDEN, generator=generator) * 0.3).to(dtype).requires_grad_()
    bias = (torch.randn(VOCAB, generator=generator) * 0.1).to(dtype).requires_grad_() if bias else None
    return weight, bias


def _grads(*tensors):
    return [None if t is None else t.grad.clone() for t in tensors]


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("num_items", [None, 40])
def test_rows_layout_matches_linear_cross_entropy(small_blocks, bias, num_items):
    weight, b = _parameters(bias=bias)
    features = torch.randn(23, HIDDEN, generator=torch.Generator().manual_seed(1)).requires_grad_()
    targets = torch.randint(0, VOCAB, (23,), generator=torch.Generator().manual_seed(2))

    logits, loss = mlm_decoder.decode_with_loss(features, weight, b, targets, num_items_in_batch=num_items)
    loss.backward()
    ours = _grads(features, weight, b)
    for t in (features, weight, b):
        if t is not None:
            t.grad = None

    want_logits = F.linear(features, weight, b)
    reduction = "mean" if num_items is None else "sum"
    want_loss = F.cross_entropy(want_logits, targets, reduction=reduction) / (num_items or 1)
    want_loss.backward()
    torch.testing.assert_close(logits, want_logits, rtol=0, atol=1e-6)
    torch.testing.assert_close(loss, want_loss, rtol=0, atol=1e-6)
    for got, want in zip(ours, _grads(features, weight, b)):
        if want is not None:
            torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


def test_grid_layout_scores_only_labelled_rows_and_adds_logit_gradients(small_blocks):
    """Padded grid: zeros at padding, loss over labelled tokens, and a second loss on the returned logits
    backpropagates together with the cross-entropy."""
    _, mask = random_batch([9, 4, 7], seed=3)
    batch = pack_batch(3, mask.shape[1], mask, None, 64, torch.device("cpu"))
    weight, b = _parameters(seed=4)
    features = torch.randn(batch.num_tokens, HIDDEN, generator=torch.Generator().manual_seed(5))
    features.requires_grad_()
    labelled_grid = batch.indices[torch.tensor([0, 2, 3, 9, 12, 15, 19])]
    packed = batch.packed_index_of(labelled_grid)
    targets = torch.randint(0, VOCAB, (7,), generator=torch.Generator().manual_seed(6))
    extra = torch.randn(batch.batch_size * batch.seq_len, VOCAB, generator=torch.Generator().manual_seed(7))

    logits, loss = mlm_decoder.decode_with_loss(
        features, weight, b, targets, batch=batch, feature_rows=packed, logit_rows=labelled_grid
    )
    (loss + (logits * extra).sum() * 1e-3).backward()
    ours = _grads(features, weight, b)
    for t in (features, weight, b):
        t.grad = None

    packed_logits = F.linear(features, weight, b)
    want_logits = packed_logits.new_zeros(logits.shape).index_copy(0, batch.indices, packed_logits)
    want_loss = F.cross_entropy(packed_logits[packed], targets)
    (want_loss + (want_logits * extra).sum() * 1e-3).backward()
    torch.testing.assert_close(logits, want_logits, rtol=0, atol=1e-6)
    assert bool((logits.view(-1, VOCAB)[~mask.view(-1).bool()] == 0).all())
    torch.testing.assert_close(loss, want_loss, rtol=0, atol=1e-6)
    for got, want in zip(ours, _grads(features, weight, b)):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-5)


def test_bfloat16_follows_an_upcast_reference():
    weight, b = _parameters(dtype=torch.bfloat16)
    features = torch.randn(31, HIDDEN, generator=torch.Generator().manual_seed(8)).bfloat16().requires_grad_()
    targets = torch.randint(0, VOCAB, (31,), generator=torch.Generator().manual_seed(9))
    logits, loss = mlm_decoder.decode_with_loss(features, weight, b, targets)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    loss.backward()
    ours = _grads(features, weight, b)
    for t in (features, weight, b):
        t.grad = None
    want_loss = F.cross_entropy(F.linear(features, weight, b).float(), targets)
    want_loss.backward()
    torch.testing.assert_close(loss, want_loss, rtol=0, atol=2e-2)
    for got, want in zip(ours, _grads(features, weight, b)):
        torch.testing.assert_close(got.float(), want.float(), rtol=5e-2, atol=5e-3)


def test_bad_targets_are_refused():
    weight, b = _parameters()
    features = torch.randn(3, HIDDEN)
    with pytest.raises(ValueError, match="vocab_size=300"):
        mlm_decoder.decode_with_loss(features, weight, b, torch.tensor([1, VOCAB, 2]))
    with pytest.raises(ValueError, match="at least one labelled token"):
        mlm_decoder.decode_with_loss(features, weight, b, torch.tensor([], dtype=torch.long))


# --------------------------------------------------------------------------------------------------------
# Inside RexBertForMaskedLM: the fused loss where it applies, transformers' loss elsewhere.
# --------------------------------------------------------------------------------------------------------


def _labelled_batch(seed: int):
    ids, mask = random_batch([12, 5, 9], seed=seed)
    chosen = (torch.rand(ids.shape, generator=torch.Generator().manual_seed(seed)) < 0.4) & mask.bool()
    return ids, mask, torch.where(chosen, ids, torch.full_like(ids, -100))


@pytest.mark.parametrize("sparse", [False, True])
def test_num_items_in_batch_divides_the_summed_loss_as_modernbert(sparse):
    ours, reference = paired_models(
        RexBertForMaskedLM, ModernBertForMaskedLM, tiny_config(sparse_prediction=sparse), "sdpa"
    )
    ids, mask, labels = _labelled_batch(seed=11)
    num_items = torch.tensor(50)
    got = ours(ids, attention_mask=mask, labels=labels, num_items_in_batch=num_items).loss
    want = reference(ids, attention_mask=mask, labels=labels, num_items_in_batch=num_items).loss
    assert abs(got.item() - want.item()) <= 1e-5


def test_custom_loss_function_is_used_instead_of_the_fused_loss():
    ours, reference = paired_models(RexBertForMaskedLM, ModernBertForMaskedLM, tiny_config(), "sdpa")
    ids, mask, labels = _labelled_batch(seed=12)
    calls = []

    def custom_loss(logits, labels, vocab_size, **kwargs):
        calls.append(tuple(logits.shape))
        return F.cross_entropy(logits, labels, reduction="sum")

    ours.loss_function = custom_loss
    loss = ours(ids, attention_mask=mask, labels=labels).loss
    num_labelled = int((labels != -100).sum())
    assert calls == [(num_labelled, ours.config.vocab_size)]
    want = reference(ids, attention_mask=mask, labels=labels).loss * num_labelled
    assert abs(loss.item() - want.item()) <= 1e-4


def test_batch_without_labelled_tokens_gives_nan_loss_as_modernbert():
    ours, reference = paired_models(RexBertForMaskedLM, ModernBertForMaskedLM, tiny_config(), "sdpa")
    ids, mask, labels = _labelled_batch(seed=13)
    unlabelled = torch.full_like(labels, -100)
    assert torch.isnan(ours(ids, attention_mask=mask, labels=unlabelled).loss)
    assert torch.isnan(reference(ids, attention_mask=mask, labels=unlabelled).loss)


@pytest.mark.parametrize("bad_label", [-1, 10**6])
def test_labels_outside_the_vocabulary_are_refused(bad_label):
    model = RexBertForMaskedLM(tiny_config())
    ids, mask, labels = _labelled_batch(seed=14)
    labels[0, 1] = bad_label
    with pytest.raises(ValueError, match="labels must be -100 or token ids"):
        model(ids, attention_mask=mask, labels=labels)


def test_scattered_padding_is_decoded_packed_then_scattered():
    """Masks with many holes (more runs than the per-run writer handles) take the scatter path."""
    mask = (torch.arange(40) % 2 == 0).long().expand(2, 40)  # every other token is padding
    batch = pack_batch(2, 40, mask, None, 64, torch.device("cpu"))
    assert len(batch.grid_runs) > 4 * batch.batch_size + 16
    weight, b = _parameters(seed=16)
    features = torch.randn(batch.num_tokens, HIDDEN, generator=torch.Generator().manual_seed(17))
    logits = mlm_decoder.decode(features, weight, b, batch)
    want = torch.zeros(80, VOCAB).index_copy(0, batch.indices, F.linear(features, weight, b))
    torch.testing.assert_close(logits, want, rtol=0, atol=1e-6)
