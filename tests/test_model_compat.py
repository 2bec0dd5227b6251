"""Drop-in compatibility with transformers' ModernBERT where a user can see it (same random weights, float32):
attention maps, labels on padding, inputs longer than `max_position_embeddings`, every rope type,
`set_attn_implementation`; and the padded path compilers and exporters take (`modeling_rexbert/padded.py`):
`torch.export` with static and dynamic shapes and ONNX export, directly and through transformers' own exporters
(saved and loaded), give eager's outputs on a batch of another padding at every position (zeros at padding on
every path), and compiling the encoder breaks its graph at
most twice.
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
from model_helpers import (
    max_diff_on_real_tokens,
    paired_models,
    random_batch,
    tiny_config,
)
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
EXPORT_TOL = 1e-4
PAIRS = {
    "base": (RexBertModel, ModernBertModel),
    "masked_lm": (RexBertForMaskedLM, ModernBertForMaskedLM),
    "sequence_classification": (RexBertForSequenceClassification, ModernBertForSequenceClassification),
    "token_classification": (RexBertForTokenClassification, ModernBertForTokenClassification),
    "question_answering": (RexBertForQuestionAnswering, ModernBertForQuestionAnswering),
    "multiple_choice": (RexBertForMultipleChoice, ModernBertForMultipleChoice),
}
# A ragged batch whose short rows have padded queries beyond the local window of every real token.
LENGTHS = [40, 7, 23, 1]


def _head_config(head: str, **overrides):
    return tiny_config(num_labels=2 if head == "question_answering" else 3, **overrides)


def _inputs(head: str, lengths=LENGTHS, seed: int = 0) -> dict[str, torch.Tensor]:
    ids, mask = random_batch(lengths, seed=seed)
    if head == "multiple_choice":  # (batch, choices, seq_len): two choices per example
        return {"input_ids": ids.view(-1, 2, ids.shape[1]), "attention_mask": mask.view(-1, 2, ids.shape[1])}
    return {"input_ids": ids, "attention_mask": mask}


def _first_output(output) -> torch.Tensor:
    for name in ("last_hidden_state", "logits", "start_logits"):
        if getattr(output, name, None) is not None:
            return getattr(output, name)
    raise AssertionError(f"no output tensor in {type(output).__name__}")


def _output_diff(head: str, got, want, attention_mask: torch.Tensor) -> float:
    """Max difference of the head's main output: on real tokens for per-token outputs (RexBERT returns zeros at
    padding), everywhere for pooled ones."""
    if head in ("sequence_classification", "multiple_choice"):
        return (got.logits - want.logits).abs().max().item()
    if head == "question_answering":
        return max(
            max_diff_on_real_tokens(got.start_logits, want.start_logits, attention_mask),
            max_diff_on_real_tokens(got.end_logits, want.end_logits, attention_mask),
        )
    return max_diff_on_real_tokens(_first_output(got), _first_output(want), attention_mask)


# --------------------------------------------------------------------------------------------------------
# Attention maps.
# --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("head", list(PAIRS))
@pytest.mark.parametrize("backend", ["sdpa", "eager"])
def test_attention_maps_match_modernbert_eager(head, backend):
    ours, reference = paired_models(*PAIRS[head], _head_config(head), backend)
    reference.set_attn_implementation("eager")  # ModernBERT returns attention maps from eager only
    inputs = _inputs(head)
    with torch.no_grad():
        got = ours(**inputs, output_attentions=True)
        want = reference(**inputs, output_attentions=True)
    assert len(got.attentions) == len(want.attentions) == ours.config.num_hidden_layers
    queries = inputs["attention_mask"].reshape(-1, inputs["attention_mask"].shape[-1]).bool()
    for got_map, want_map in zip(got.attentions, want.attentions):
        assert got_map.shape == want_map.shape
        real_rows = got_map.transpose(1, 2)[queries], want_map.transpose(1, 2)[queries]
        assert (real_rows[0] - real_rows[1]).abs().max().item() <= TOL
        assert got_map.transpose(1, 2)[~queries].abs().max().item() == 0.0  # padding queries: zero rows
    assert _output_diff(head, got, want, inputs["attention_mask"]) <= TOL
    assert _zero_at_padding(got, inputs["attention_mask"])


def _zero_at_padding(output, attention_mask: torch.Tensor) -> bool:
    """Every per-token output of `output` is zero at padding positions (the one padding rule)."""
    flat = attention_mask.reshape(-1, attention_mask.shape[-1]).bool()
    per_token = [getattr(output, name, None) for name in ("last_hidden_state", "start_logits", "end_logits")]
    per_token += [output.logits] if getattr(output, "logits", None) is not None else []
    per_token += list(getattr(output, "hidden_states", None) or ())
    checked = [t for t in per_token if t is not None and t.dim() >= 2 and t.shape[:2] == flat.shape]
    return all(t[~flat].abs().max().item() == 0.0 for t in checked)


def test_config_output_attentions_returns_maps():
    ours, _ = paired_models(RexBertModel, ModernBertModel, tiny_config(output_attentions=True), "sdpa")
    ids, mask = random_batch(LENGTHS)
    with torch.no_grad():
        output = ours(ids, attention_mask=mask)
    assert output.attentions is not None and len(output.attentions) == ours.config.num_hidden_layers
    # each real query's weights sum to one over the keys it may see, masked keys get none, and the rows of
    # padding queries are zero
    weights = output.attentions[0]
    sums = weights.sum(-1).transpose(1, 2)
    assert torch.allclose(sums[mask.bool()], torch.ones_like(sums[mask.bool()]), atol=1e-5)
    assert sums[~mask.bool()].abs().max().item() == 0.0
    assert weights[1, :, :7, 7:].abs().max().item() == 0.0


def test_padded_path_equals_default_path_on_real_tokens():
    model, _ = paired_models(RexBertModel, ModernBertModel, tiny_config(), "sdpa")
    ids, mask = random_batch(LENGTHS)
    positions = torch.cat([torch.arange(20), torch.arange(20)]).expand(len(LENGTHS), -1)  # two documents
    with torch.no_grad():
        for position_ids in (None, positions):
            fast = model(ids, attention_mask=mask, position_ids=position_ids, output_hidden_states=True)
            grid = model(
                ids,
                attention_mask=mask,
                position_ids=position_ids,
                output_hidden_states=True,
                output_attentions=True,
            )
            assert fast.attentions is None
            for a, b in zip(fast.hidden_states, grid.hidden_states, strict=True):
                assert (a - b).abs().max().item() <= TOL  # every position: zeros at padding on both paths
                assert a[mask == 0].abs().max().item() == 0.0


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
def test_padded_path_equals_modernbert_at_padding_too(backend):
    """With labels on padding every output equals ModernBERT's on the same backend, padding included; with
    attention maps (computed the eager way, so compared with ModernBERT's eager) real tokens equal
    ModernBERT's and padding holds zeros."""
    ours, reference = paired_models(RexBertForMaskedLM, ModernBertForMaskedLM, tiny_config(), backend)
    ids, mask = random_batch(LENGTHS)
    labels = _labels_everywhere(ids)
    with torch.no_grad():
        got = ours(ids, attention_mask=mask, labels=labels, output_hidden_states=True)
        want = reference(ids, attention_mask=mask, labels=labels, output_hidden_states=True)
        with_maps = ours(ids, attention_mask=mask, output_attentions=True)
        reference.set_attn_implementation("eager")
        want_maps = reference(ids, attention_mask=mask, output_attentions=True)
    assert (got.logits - want.logits).abs().max().item() <= TOL
    for a, b in zip(got.hidden_states, want.hidden_states, strict=True):
        assert (a - b).abs().max().item() <= TOL
    assert max_diff_on_real_tokens(with_maps.logits, want_maps.logits, mask) <= TOL
    assert with_maps.logits[mask == 0].abs().max().item() == 0.0


@pytest.mark.parametrize("head", ["base", "masked_lm", "token_classification", "question_answering"])
def test_padding_holds_zeros_on_both_paths(head):
    """The padding rule: every per-token output is zero at padding, on the default path and on the padded
    path (taken here by asking for attention maps), so the two agree at every position."""
    model = PAIRS[head][0](_head_config(head)).eval()
    inputs = _inputs(head)
    with torch.no_grad():
        fast = model(**inputs, output_hidden_states=True)
        grid = model(**inputs, output_hidden_states=True, output_attentions=True)
    assert _zero_at_padding(fast, inputs["attention_mask"]) and _zero_at_padding(
        grid, inputs["attention_mask"]
    )
    assert _diff_everywhere(fast.to_tuple(), grid.to_tuple()[: len(fast.to_tuple())]) <= TOL


def test_padded_path_outputs_carry_gradients():
    """The returned hidden states and attention maps are the tensors the encoder used: gradients reach them."""
    model = RexBertModel(tiny_config()).eval()
    ids, mask = random_batch(LENGTHS)
    output = model(ids, attention_mask=mask, output_hidden_states=True, output_attentions=True)
    first_hidden, first_map = output.hidden_states[0], output.attentions[0]
    first_hidden.retain_grad()
    first_map.retain_grad()
    # a weighted sum: a plain sum (or sum of squares) of a LayerNorm output is constant, its gradient zero
    weights = torch.randn(output.last_hidden_state.shape[-1], generator=torch.Generator().manual_seed(0))
    (output.last_hidden_state[0, 0] * weights).sum().backward()
    assert first_hidden.grad is not None and first_hidden.grad.abs().sum() > 0
    assert first_map.grad is not None and first_map.grad.abs().sum() > 0


def test_gradient_checkpointing_applies_on_the_padded_path():
    """Labels on padding take the padded path; it runs through the layer modules, so checkpointing recomputes
    them and the gradients equal those without checkpointing."""
    ids, mask = random_batch(LENGTHS)
    labels = _labels_everywhere(ids)
    gradients = []
    for checkpointing in (False, True):
        torch.manual_seed(0)
        model = RexBertForMaskedLM(tiny_config()).train()
        if checkpointing:
            model.activation_checkpointing_enable()
        calls = []  # the layer's attention runs inside the checkpointed forward: twice when recomputed
        hook = model.model.layers[1].attn.register_forward_hook(lambda *args: calls.append(1))
        model(ids, attention_mask=mask, labels=labels).loss.backward()
        hook.remove()
        assert len(calls) == (2 if checkpointing else 1)
        gradients.append(model.model.layers[1].attn.Wqkv.weight.grad)
    assert (gradients[0] - gradients[1]).abs().max().item() <= 1e-6


# --------------------------------------------------------------------------------------------------------
# Labels on padding: the loss is ModernBERT's (its padded queries see what ModernBERT's see).
# --------------------------------------------------------------------------------------------------------


def _labels_everywhere(ids: torch.Tensor) -> torch.Tensor:
    labels = ids.clone()
    labels[:, ::3] = -100  # some ignored, the rest (padding included) labelled
    return labels


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
@pytest.mark.parametrize("sparse", [False, True], ids=["dense", "sparse"])
def test_masked_lm_loss_with_labels_on_padding_equals_modernbert(backend, sparse):
    config = tiny_config(sparse_prediction=sparse)
    ours, reference = paired_models(RexBertForMaskedLM, ModernBertForMaskedLM, config, backend)
    ids, mask = random_batch(LENGTHS)
    labels = _labels_everywhere(ids)
    assert (labels[mask == 0] != -100).any()
    with torch.no_grad():
        got = ours(ids, attention_mask=mask, labels=labels)
        want = reference(ids, attention_mask=mask, labels=labels)
    assert abs(got.loss.item() - want.loss.item()) <= TOL
    if not sparse:
        assert max_diff_on_real_tokens(got.logits, want.logits, mask) <= TOL


@pytest.mark.parametrize("backend", ["sdpa", "eager"])
def test_token_classification_loss_with_labels_on_padding_equals_modernbert(backend):
    ours, reference = paired_models(
        RexBertForTokenClassification, ModernBertForTokenClassification, tiny_config(num_labels=5), backend
    )
    ids, mask = random_batch(LENGTHS)
    labels = torch.randint(0, 5, ids.shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = ours(ids, attention_mask=mask, labels=labels)
        want = reference(ids, attention_mask=mask, labels=labels)
    assert abs(got.loss.item() - want.loss.item()) <= TOL
    assert (got.logits - want.logits).abs().max().item() <= TOL  # the padded path: padding included


def test_labels_on_padding_train_like_modernbert():
    """One optimiser step on labels that include padding leaves the same weights as ModernBERT's step."""
    ours, reference = paired_models(
        RexBertForTokenClassification, ModernBertForTokenClassification, tiny_config(num_labels=5), "sdpa"
    )
    ids, mask = random_batch(LENGTHS)
    labels = torch.randint(0, 5, ids.shape, generator=torch.Generator().manual_seed(2))
    for model in (ours, reference):
        model.train()
        model.config.classifier_dropout = 0.0
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        model(ids, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
    theirs = reference.state_dict()
    assert max((value - theirs[name]).abs().max().item() for name, value in ours.state_dict().items()) <= 1e-5


# --------------------------------------------------------------------------------------------------------
# Positions: inputs beyond max_position_embeddings, rope types, packed documents.
# --------------------------------------------------------------------------------------------------------


def test_inputs_longer_than_max_position_embeddings_match_modernbert():
    ours, reference = paired_models(
        RexBertModel, ModernBertModel, tiny_config(max_position_embeddings=16), "sdpa"
    )
    ids, mask = random_batch([40, 23])
    with torch.no_grad():
        got = ours(ids, attention_mask=mask).last_hidden_state
        want = reference(ids, attention_mask=mask).last_hidden_state
    assert max_diff_on_real_tokens(got, want, mask) <= TOL


ROPE_TYPES = {
    "linear": {"factor": 2.0},
    "dynamic": {"factor": 2.0},
    "yarn": {"factor": 2.0, "original_max_position_embeddings": 16},
}


@pytest.mark.parametrize("rope_type", list(ROPE_TYPES))
def test_rope_types_match_modernbert(rope_type):
    rope_parameters = {
        "full_attention": {"rope_type": rope_type, "rope_theta": 160_000.0, **ROPE_TYPES[rope_type]},
        "sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
    }
    config = tiny_config(max_position_embeddings=16, rope_parameters=rope_parameters)
    ours, reference = paired_models(RexBertModel, ModernBertModel, config, "sdpa")
    ids, mask = random_batch([40, 23])
    with torch.no_grad():
        got = ours(ids, attention_mask=mask).last_hidden_state
        want = reference(ids, attention_mask=mask).last_hidden_state
        default = RexBertModel(tiny_config(max_position_embeddings=16))
        default.load_state_dict(ours.state_dict())
        unscaled = default.eval()(ids, attention_mask=mask).last_hidden_state
    assert max_diff_on_real_tokens(got, want, mask) <= TOL
    assert max_diff_on_real_tokens(got, unscaled, mask) > 10 * TOL  # the rope type changes the result


def test_negative_position_ids_are_refused():
    model = RexBertModel(tiny_config()).eval()
    ids, mask = random_batch([5, 5])
    with pytest.raises(ValueError, match="position_ids must be >= 0"):
        model(ids, attention_mask=mask, position_ids=torch.tensor([[0, 1, -1, 2, 3]]))


# --------------------------------------------------------------------------------------------------------
# Attention backends.
# --------------------------------------------------------------------------------------------------------


def test_set_attn_implementation_switches_the_backend():
    ours, reference = paired_models(RexBertModel, ModernBertModel, tiny_config(), "sdpa")
    ids, mask = random_batch(LENGTHS)
    for backend in ("eager", "sdpa"):
        ours.set_attn_implementation(backend)
        reference.set_attn_implementation(backend)
        assert ours.config._attn_implementation == backend
        with torch.no_grad():
            got = ours(ids, attention_mask=mask, output_attentions=True)
            want = reference(ids, attention_mask=mask, output_attentions=backend == "eager")
        assert max_diff_on_real_tokens(got.last_hidden_state, want.last_hidden_state, mask) <= TOL
    with pytest.raises((ValueError, ImportError)):
        ours.set_attn_implementation("not_a_backend")


# --------------------------------------------------------------------------------------------------------
# Compile and export: the padded path, one graph for any batch.
# --------------------------------------------------------------------------------------------------------

HAS_ONNX = all(importlib.util.find_spec(name) for name in ("onnx", "onnxscript", "onnxruntime"))
# Exported with one padding, run on another: rows of other lengths, and for dynamic shapes another size.
TRACED = [40, 7, 23, 1]
SAME_SHAPE = [12, 40, 3, 30]
OTHER_SHAPE = [9, 51, 17, 2, 30, 5]


class _Outputs(torch.nn.Module):
    """A head as a function of tensors to a tuple of tensors (what exporters trace)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask).to_tuple()


def _export_model(head: str):
    model = PAIRS[head][0](_head_config(head)).eval()
    return _Outputs(model).eval()


def _dynamic_shapes(head: str) -> dict:
    dims = (0, 1, 2) if head == "multiple_choice" else (0, 1)
    axes = {axis: torch.export.Dim.DYNAMIC for axis in dims}
    return {"input_ids": axes, "attention_mask": axes}


def _diff_everywhere(got: tuple, want: tuple) -> float:
    """The largest difference over every output and every position, padding included."""
    flat = []
    for a, b in zip(got, want, strict=True):
        if isinstance(a, tuple):
            flat += list(zip(a, b, strict=True))
        else:
            flat.append((a, b))
    return max((torch.as_tensor(a) - torch.as_tensor(b)).abs().max().item() for a, b in flat)


@pytest.mark.parametrize("head", list(PAIRS))
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_torch_export_matches_eager_on_another_padding(head, dynamic):
    model = _export_model(head)
    traced = _inputs(head, TRACED)
    exported = torch.export.export(
        model, (), kwargs=traced, dynamic_shapes=_dynamic_shapes(head) if dynamic else None
    )
    other = _inputs(head, OTHER_SHAPE if dynamic else SAME_SHAPE, seed=3)
    with torch.no_grad():
        got = exported.module()(**other)
        want = model(**other)
    assert _diff_everywhere(got, want) <= EXPORT_TOL


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxscript and onnxruntime (the test extra)")
@pytest.mark.parametrize("head", list(PAIRS))
def test_onnx_export_matches_eager_on_another_padding(head, tmp_path):
    import onnxruntime

    model = _export_model(head)
    path = tmp_path / f"{head}.onnx"
    torch.onnx.export(
        model,
        (),
        str(path),
        kwargs=_inputs(head, TRACED),
        dynamic_shapes=_dynamic_shapes(head),
        dynamo=True,
        verbose=False,
    )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert {i.name for i in session.get_inputs()} == {"input_ids", "attention_mask"}
    other = _inputs(head, OTHER_SHAPE, seed=3)
    got = session.run(None, {name: tensor.numpy() for name, tensor in other.items()})
    with torch.no_grad():
        want = model(**other)
    assert _diff_everywhere(tuple(map(torch.from_numpy, got)), want) <= EXPORT_TOL


# transformers' own exporters (`transformers.exporters`, what its export tests drive): the heads its tests
# found differing at padding before the padding rule, through the public API a user calls, saved and loaded.
EXPORTED_HEADS = ["base", "masked_lm", "token_classification", "question_answering"]


@pytest.mark.skipif(not HAS_ONNX, reason="needs onnx, onnxscript and onnxruntime (the test extra)")
@pytest.mark.parametrize("head", EXPORTED_HEADS)
@pytest.mark.parametrize("backend", ["dynamo", "onnx"])
@pytest.mark.parametrize("dynamic", [False, True], ids=["static", "dynamic"])
def test_transformers_exporters_give_eager_outputs_at_every_position(head, backend, dynamic, tmp_path):
    from transformers.exporters import DynamoConfig, DynamoExporter, ExportedModel, OnnxConfig, OnnxExporter

    exporter, config = (DynamoExporter, DynamoConfig) if backend == "dynamo" else (OnnxExporter, OnnxConfig)
    model = PAIRS[head][0](_head_config(head)).eval()
    exporter().export(model, _inputs(head, TRACED), config=config(dynamic=dynamic)).save_pretrained(tmp_path)
    exported = ExportedModel.from_pretrained(tmp_path)
    other = _inputs(head, OTHER_SHAPE if dynamic else SAME_SHAPE, seed=3)
    got = exported(**other)
    with torch.no_grad():
        want = model(**other)
    names = [name for name, value in want.items() if isinstance(value, torch.Tensor)]
    assert names and all(torch.as_tensor(got[name]).shape == want[name].shape for name in names)
    assert (
        _diff_everywhere(tuple(torch.as_tensor(got[name]) for name in names), want.to_tuple()) <= EXPORT_TOL
    )


def test_compiling_the_encoder_breaks_the_graph_at_most_twice():
    import torch._dynamo

    model = RexBertModel(tiny_config()).eval()
    ids, mask = random_batch(TRACED)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(ids, attention_mask=mask)
    assert explanation.graph_break_count <= 2, explanation.break_reasons
    compiled = torch.compile(model, dynamic=True)
    other_ids, other_mask = random_batch(OTHER_SHAPE, seed=3)
    with torch.no_grad():
        got = compiled(other_ids, attention_mask=other_mask).last_hidden_state
        want = model(other_ids, attention_mask=other_mask).last_hidden_state
    assert (got - want).abs().max().item() <= EXPORT_TOL  # padding included
    torch._dynamo.reset()
