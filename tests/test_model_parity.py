"""Numerical parity with transformers' ModernBERT (same random weights, float32, max abs diff <= 1e-5).

Every attention backend available here is checked: sdpa and eager always, flash_attention_2 only where
flash-attn and a CUDA GPU exist, varlen_attn (PyTorch's own varlen kernels) where torch has it and CUDA exists. Outputs are compared on real tokens (RexBERT returns zeros at padding).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from model_helpers import max_diff_on_real_tokens, paired_models, random_batch, tiny_config
from transformers import (
    ModernBertForMaskedLM,
    ModernBertForMultipleChoice,
    ModernBertForQuestionAnswering,
    ModernBertForSequenceClassification,
    ModernBertForTokenClassification,
    ModernBertModel,
)

from modeling_rexbert import (
    RexBertForMaskedLM,
    RexBertForMultipleChoice,
    RexBertForQuestionAnswering,
    RexBertForSequenceClassification,
    RexBertForTokenClassification,
    RexBertModel,
)

TOL = 1e-5
HAS_FLASH = torch.cuda.is_available() and importlib.util.find_spec("flash_attn") is not None
HAS_VARLEN = torch.cuda.is_available() and importlib.util.find_spec("torch.nn.attention.varlen") is not None
BACKENDS = [
    "sdpa",
    "eager",
    pytest.param(
        "flash_attention_2", marks=pytest.mark.skipif(not HAS_FLASH, reason="needs flash-attn and a CUDA GPU")
    ),
    pytest.param(
        "varlen_attn",
        marks=pytest.mark.skipif(not HAS_VARLEN, reason="needs torch.nn.attention.varlen and CUDA"),
    ),
]
HALF_PRECISION = ("flash_attention_2", "varlen_attn")
BATCHES = {
    "full": [24, 24, 24],
    "ragged": [40, 7, 23, 1, 33],
    "long": [2048, 300],
}


def _device_and_dtype(backend: str):
    # the varlen kernels run on GPU in half precision only; the tolerance is then bf16's.
    if backend in HALF_PRECISION:
        return torch.device("cuda"), torch.bfloat16, 2e-2
    return torch.device("cpu"), torch.float32, TOL


def _pair(ours_class, reference_class, backend, **config_overrides):
    device, dtype, tol = _device_and_dtype(backend)
    ours, reference = paired_models(ours_class, reference_class, tiny_config(**config_overrides), backend)
    if backend in HALF_PRECISION:
        reference.config._attn_implementation = "sdpa"  # reference in sdpa; ours through the varlen kernel
    return ours.to(device, dtype), reference.to(device, dtype), device, tol


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", list(BATCHES))
def test_masked_lm_matches_modernbert(backend, shape):
    ours, reference, device, tol = _pair(RexBertForMaskedLM, ModernBertForMaskedLM, backend)
    ids, mask = random_batch(BATCHES[shape])
    mask_arg = None if shape == "full" else mask.to(device)
    ids = ids.to(device)
    with torch.no_grad():
        got = ours(ids, attention_mask=mask_arg, output_hidden_states=True)
        want = reference(ids, attention_mask=mask_arg, output_hidden_states=True)
    assert max_diff_on_real_tokens(got.logits.float(), want.logits.float(), mask) <= tol
    assert len(got.hidden_states) == len(want.hidden_states)
    for mine, theirs in zip(got.hidden_states, want.hidden_states):
        assert max_diff_on_real_tokens(mine.float(), theirs.float(), mask) <= tol
    if shape != "full":
        assert got.logits[~mask.bool()].abs().max() == 0  # padding positions carry zeros


@pytest.mark.parametrize("backend", BACKENDS)
def test_base_model_matches_modernbert(backend):
    ours, reference, device, tol = _pair(RexBertModel, ModernBertModel, backend)
    ids, mask = random_batch(BATCHES["ragged"])
    with torch.no_grad():
        got = ours(ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        want = reference(ids.to(device), attention_mask=mask.to(device)).last_hidden_state
    assert max_diff_on_real_tokens(got.float(), want.float(), mask) <= tol


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sparse", [False, True])
def test_mlm_loss_and_gradients_match_modernbert(backend, sparse):
    """Same loss, same sparse logits, same gradients (training parity, 30% of real tokens labelled)."""
    ours, reference, device, tol = _pair(
        RexBertForMaskedLM, ModernBertForMaskedLM, backend, sparse_prediction=sparse
    )
    ids, mask = random_batch(BATCHES["ragged"], seed=1)
    generator = torch.Generator().manual_seed(2)
    chosen = (torch.rand(ids.shape, generator=generator) < 0.3) & mask.bool()
    labels = torch.where(chosen, ids, torch.full_like(ids, -100))
    args = dict(input_ids=ids.to(device), attention_mask=mask.to(device), labels=labels.to(device))
    got, want = ours(**args), reference(**args)
    assert abs(got.loss.item() - want.loss.item()) <= tol
    if sparse:
        assert got.logits.shape == (int(chosen.sum()), ours.config.vocab_size)
        assert (got.logits - want.logits).abs().max().item() <= tol
    got.loss.backward()
    want.loss.backward()
    reference_grads = dict(reference.named_parameters())
    for name, param in ours.named_parameters():
        assert (param.grad.float() - reference_grads[name].grad.float()).abs().max().item() <= tol, name


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_sequence_classification_matches_modernbert(backend, pooling):
    ours, reference, device, tol = _pair(
        RexBertForSequenceClassification,
        ModernBertForSequenceClassification,
        backend,
        num_labels=3,
        classifier_pooling=pooling,
    )
    ids, mask = random_batch(BATCHES["ragged"])
    labels = torch.tensor([0, 1, 2, 1, 0], device=device)
    with torch.no_grad():
        got = ours(ids.to(device), attention_mask=mask.to(device), labels=labels)
        want = reference(ids.to(device), attention_mask=mask.to(device), labels=labels)
    assert (got.logits - want.logits).abs().max().item() <= tol
    assert abs(got.loss.item() - want.loss.item()) <= tol


@pytest.mark.parametrize("backend", BACKENDS)
def test_token_classification_matches_modernbert(backend):
    ours, reference, device, tol = _pair(
        RexBertForTokenClassification, ModernBertForTokenClassification, backend, num_labels=5
    )
    ids, mask = random_batch(BATCHES["long"])
    labels = torch.where(mask.bool(), ids % 5, torch.full_like(ids, -100)).to(device)
    with torch.no_grad():
        got = ours(ids.to(device), attention_mask=mask.to(device), labels=labels)
        want = reference(ids.to(device), attention_mask=mask.to(device), labels=labels)
    assert max_diff_on_real_tokens(got.logits.float(), want.logits.float(), mask) <= tol
    assert abs(got.loss.item() - want.loss.item()) <= tol


@pytest.mark.parametrize("backend", BACKENDS)
def test_question_answering_matches_modernbert(backend):
    ours, reference, device, tol = _pair(RexBertForQuestionAnswering, ModernBertForQuestionAnswering, backend)
    ids, mask = random_batch(BATCHES["ragged"])
    spans = dict(start_positions=torch.tensor([1, 2, 3, 0, 4]), end_positions=torch.tensor([5, 6, 9, 0, 8]))
    with torch.no_grad():
        got = ours(ids.to(device), attention_mask=mask.to(device), **spans)
        want = reference(ids.to(device), attention_mask=mask.to(device), **spans)
    assert max_diff_on_real_tokens(got.start_logits, want.start_logits, mask) <= tol
    assert max_diff_on_real_tokens(got.end_logits, want.end_logits, mask) <= tol
    # The span loss softmaxes over every position, padding included, where the two models differ by design
    # (zeros here, states computed from padding there): compare it on a batch without padding.
    full_ids, _ = random_batch(BATCHES["full"])
    spans = dict(start_positions=torch.tensor([1, 2, 3]), end_positions=torch.tensor([5, 6, 9]))
    with torch.no_grad():
        got = ours(full_ids.to(device), **spans)
        want = reference(full_ids.to(device), **spans)
    assert abs(got.loss.item() - want.loss.item()) <= tol


@pytest.mark.parametrize("backend", BACKENDS)
def test_multiple_choice_matches_modernbert(backend):
    ours, reference, device, tol = _pair(RexBertForMultipleChoice, ModernBertForMultipleChoice, backend)
    ids, mask = random_batch([30, 12, 25, 30, 5, 17])
    ids, mask = ids.view(2, 3, -1).to(device), mask.view(2, 3, -1).to(device)
    labels = torch.tensor([2, 0], device=device)
    with torch.no_grad():
        got = ours(ids, attention_mask=mask, labels=labels)
        want = reference(ids, attention_mask=mask, labels=labels)
    assert got.logits.shape == (2, 3)
    assert (got.logits - want.logits).abs().max().item() <= tol
    assert abs(got.loss.item() - want.loss.item()) <= tol


@pytest.mark.parametrize("backend", BACKENDS)
def test_packed_row_equals_documents_alone(backend):
    """Three documents packed in one row (position_ids restart at 0), plus a padded second row: each
    document's outputs equal those of the document encoded alone, by RexBERT and by ModernBERT."""
    ours, reference, device, tol = _pair(RexBertForMaskedLM, ModernBertForMaskedLM, backend)
    lengths = [37, 5, 60]  # 60 > the 16-token window, 5 < it
    docs, _ = random_batch(lengths, seed=3)
    docs = [docs[i, :n] for i, n in enumerate(lengths)]
    row_len = sum(lengths) + 4
    ids = torch.zeros(2, row_len, dtype=torch.long)
    positions = torch.zeros(2, row_len, dtype=torch.long)
    mask = torch.zeros(2, row_len, dtype=torch.long)
    ids[0, : sum(lengths)] = torch.cat(docs)
    positions[0, : sum(lengths)] = torch.cat([torch.arange(n) for n in lengths])
    mask[0, : sum(lengths)] = 1
    ids[1, :20], positions[1, :20], mask[1, :20] = docs[2][:20], torch.arange(20), 1
    with torch.no_grad():
        packed = ours(
            ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device)
        ).logits
        offset = 0
        for doc in docs:
            alone = doc[None].to(device)
            mine = ours(alone).logits[0]
            theirs = reference(alone).logits[0]
            assert (packed[0, offset : offset + len(doc)] - mine).abs().max().item() <= tol
            assert (mine - theirs).abs().max().item() <= tol
            offset += len(doc)
        second_alone = ours(docs[2][None, :20].to(device)).logits[0]
    assert (packed[1, :20] - second_alone).abs().max().item() <= tol


def test_packed_documents_do_not_leak_gradients():
    """The loss of one packed document has zero gradient with respect to another document's embeddings."""
    ours, _, _, _ = _pair(RexBertModel, ModernBertModel, "sdpa")
    ids, _ = random_batch([50], seed=4)
    positions = torch.cat([torch.arange(20), torch.arange(30)])[None]
    embeds = ours.get_input_embeddings()(ids).detach().requires_grad_(True)
    out = ours(inputs_embeds=embeds, position_ids=positions).last_hidden_state
    out[0, 25:].sum().backward()
    assert embeds.grad[0, :20].abs().max() == 0
    assert embeds.grad[0, 20:].abs().max() > 0


def test_left_padding_matches_modernbert():
    """Padding anywhere in the row is removed; RoPE keeps ModernBERT's row positions."""
    ours, reference, _, tol = _pair(RexBertForTokenClassification, ModernBertForTokenClassification, "sdpa")
    ids, mask = random_batch([40, 18])
    ids, mask = ids.flip(1), mask.flip(1)
    with torch.no_grad():
        got = ours(ids, attention_mask=mask).logits
        want = reference(ids, attention_mask=mask).logits
    assert max_diff_on_real_tokens(got, want, mask) <= tol


def test_backends_agree_with_each_other_on_packed_long_batch():
    """sdpa (blocked local attention) against the eager per-document reference on a long packed row."""
    config = tiny_config()
    torch.manual_seed(5)
    model = RexBertModel(config).eval()
    ids, _ = random_batch([1500], seed=5)
    positions = torch.cat([torch.arange(700), torch.arange(3), torch.arange(797)])[None]
    outputs = {}
    for backend in ("sdpa", "eager"):
        model.config._attn_implementation = backend
        with torch.no_grad():
            outputs[backend] = model(ids, position_ids=positions).last_hidden_state
    assert (outputs["sdpa"] - outputs["eager"]).abs().max().item() <= TOL


def test_banded_local_attention_on_short_documents_equals_eager():
    """Many documents shorter than three windows (a catalogue's texts): local layers take the banded
    document-group path, forward and backward, and agree with the eager per-document reference."""
    from modeling_rexbert.attention import _document_groups

    config = tiny_config()
    window = config.local_attention // 2
    lengths = [3 * window - 1, 2 * window + 3, window + 2, 2 * window, window + 5, 7, 2 * window + 1, 1]
    ids, _ = random_batch([sum(lengths)], seed=6)
    positions = torch.cat([torch.arange(n) for n in lengths])[None]
    outputs, gradients = {}, {}
    for backend in ("sdpa", "eager"):
        torch.manual_seed(6)
        model = RexBertModel(config)
        model.config._attn_implementation = backend
        hidden = model(ids, position_ids=positions).last_hidden_state
        hidden.pow(2).mean().backward()
        outputs[backend], gradients[backend] = hidden.detach(), model.layers[1].attn.Wqkv.weight.grad
    assert (outputs["sdpa"] - outputs["eager"]).abs().max().item() <= TOL
    assert (gradients["sdpa"] - gradients["eager"]).abs().max().item() <= TOL
    from modeling_rexbert.unpadding import pack_batch

    batch = pack_batch(1, sum(lengths), None, positions, config.max_position_embeddings, torch.device("cpu"))
    groups = _document_groups(batch)[0]
    assert sum(g.count * g.longest**2 for g in groups) <= 3 * window * batch.num_tokens  # the banded path


def test_gradients_through_returned_logits_match_modernbert():
    """A custom loss on the returned (batch, seq_len, vocab) logits of a padded batch backpropagates exactly
    like ModernBERT's (RexBERT writes those logits straight into the padded output)."""
    ours, reference, _, tol = _pair(RexBertForMaskedLM, ModernBertForMaskedLM, "sdpa")
    ids, mask = random_batch(BATCHES["ragged"], seed=6)
    weights = torch.randn(*ids.shape, ours.config.vocab_size, generator=torch.Generator().manual_seed(6))
    weights = weights * mask[..., None]
    for model in (ours, reference):
        (model(ids, attention_mask=mask).logits * weights).sum().backward()
    reference_grads = dict(reference.named_parameters())
    for name, param in ours.named_parameters():
        assert (param.grad - reference_grads[name].grad).abs().max().item() <= 1e-4, name
