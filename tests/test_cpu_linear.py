"""Linear layers through oneDNN for CPU inference (`modeling_rexbert.with_onednn_linear`): nn.Linear's outputs
(checked against `F.linear` on the same weights) for every input shape, plain gradients when training, never a
stale reordered weight after the weight changes, the same state dict, copies that work, and the encoder's
outputs unchanged. The attention's query/key projection in rotary pair order (rotated in place as complex
numbers) is checked against `apply_rotary` and the plain encoder, outputs and gradients."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from model_helpers import random_batch, tiny_config

from modeling_rexbert import RexBertForMaskedLM, RexBertModel, with_onednn_linear
from modeling_rexbert.cpu_linear import ONEDNN_LINEAR_AVAILABLE, OneDnnLinear
from modeling_rexbert.rotary import apply_rotary, apply_rotary_to_pairs, pair_order

pytestmark = pytest.mark.skipif(
    not ONEDNN_LINEAR_AVAILABLE, reason="this torch has no oneDNN linear operator"
)
TOL = 1e-5


def _linear(bias: bool = True) -> tuple[torch.nn.Linear, OneDnnLinear]:
    torch.manual_seed(0)
    plain = torch.nn.Linear(48, 80, bias=bias)
    return plain, with_onednn_linear(copy.deepcopy(plain))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize(
    "shape", [(37, 48), (3, 11, 48), (0, 48), (1, 48)], ids=["rows", "batched", "empty", "one"]
)
def test_inference_gives_nn_linear_outputs(shape, bias):
    plain, fast = _linear(bias)
    assert isinstance(fast, OneDnnLinear) and isinstance(fast, torch.nn.Linear)
    inputs = torch.randn(*shape)
    with torch.inference_mode():
        got = fast(inputs)
    assert fast._reordered is not None  # the oneDNN path ran
    want = F.linear(inputs, plain.weight, plain.bias)
    assert got.shape == want.shape
    assert want.numel() == 0 or (got - want).abs().max().item() <= TOL


def test_a_strided_input_is_read_as_it_is():
    plain, fast = _linear()
    wide = torch.randn(20, 96)
    with torch.no_grad():
        got, want = fast(wide[:, ::2]), plain(wide[:, ::2])
    assert (got - want).abs().max().item() <= TOL


def test_training_runs_plain_linear_with_its_gradients():
    plain, fast = _linear()
    inputs = torch.randn(9, 48)
    fast(inputs).square().sum().backward()
    plain(inputs).square().sum().backward()
    assert fast._reordered is None  # no oneDNN copy was made for a forward that needs gradients
    assert torch.allclose(fast.weight.grad, plain.weight.grad, atol=TOL)
    assert torch.allclose(fast.bias.grad, plain.bias.grad, atol=TOL)


def test_a_changed_weight_is_never_answered_with_the_old_copy():
    plain, fast = _linear()
    inputs = torch.randn(5, 48)
    with torch.no_grad():
        fast(inputs)
        fast.weight.mul_(-2.0)  # an in-place change, as an optimizer step or load_state_dict makes
        assert (fast(inputs) - F.linear(inputs, fast.weight, fast.bias)).abs().max().item() <= TOL
        fast.weight = torch.nn.Parameter(torch.randn(80, 48))  # a new tensor altogether
        assert (fast(inputs) - F.linear(inputs, fast.weight, fast.bias)).abs().max().item() <= TOL
    fast.load_state_dict(plain.state_dict())
    with torch.no_grad():
        assert (fast(inputs) - plain(inputs)).abs().max().item() <= TOL


def test_other_dtypes_run_plain_linear():
    plain, fast = _linear()
    inputs = torch.randn(6, 48, dtype=torch.float64)
    with torch.no_grad():
        got = fast.double()(inputs)
    assert got.dtype == torch.float64
    assert (got - plain.double()(inputs)).abs().max().item() <= 1e-12


def test_the_encoder_keeps_its_outputs_state_dict_and_copies():
    model = RexBertModel(tiny_config()).eval()
    ids, mask = random_batch([40, 7, 23, 1])
    with torch.no_grad():
        want = model(ids, attention_mask=mask).last_hidden_state
    keys = list(model.state_dict())
    fast = with_onednn_linear(model)
    linears = [m for m in fast.modules() if isinstance(m, torch.nn.Linear)]
    assert linears and all(type(m) is OneDnnLinear for m in linears)
    assert list(fast.state_dict()) == keys
    with torch.no_grad():
        got = fast(ids, attention_mask=mask).last_hidden_state
    assert (got - want).abs().max().item() <= TOL
    for duplicate in (copy.deepcopy(fast), pickle.loads(pickle.dumps(fast))):
        assert all(m._reordered is None for m in duplicate.modules() if isinstance(m, OneDnnLinear))
        with torch.no_grad():
            again = duplicate(ids, attention_mask=mask).last_hidden_state
        assert (again - want).abs().max().item() <= TOL


def test_compilers_and_exporters_trace_plain_linear():
    model = with_onednn_linear(RexBertModel(tiny_config()).eval())
    ids, mask = random_batch([12, 5])
    with torch.no_grad():
        want = model(ids, attention_mask=mask).last_hidden_state
        exported = torch.export.export(model, (ids,), kwargs={"attention_mask": mask})
        compiled = torch.compile(model)
        got = compiled(ids, attention_mask=mask).last_hidden_state
    assert (got - want).abs().max().item() <= TOL
    assert (exported.module()(ids, attention_mask=mask).last_hidden_state - want).abs().max().item() <= TOL
    torch._dynamo.reset()


def test_an_output_order_permutes_the_outputs_on_every_path():
    plain, fast = _linear()
    order = torch.randperm(80, generator=torch.Generator().manual_seed(1))
    inputs = torch.randn(7, 48)
    want = F.linear(inputs, plain.weight[order], plain.bias[order])
    with torch.no_grad():
        assert (fast(inputs, output_order=order) - want).abs().max().item() <= TOL
        assert fast._reordered[2] is order  # built from the permuted rows, kept for the next call
        assert (
            fast(inputs) - plain(inputs)
        ).abs().max().item() <= TOL  # no order: rebuilt, not the permuted copy
    fast(inputs, output_order=order).square().sum().backward()  # training: F.linear on the permuted rows
    plain_weight = plain.weight.detach().requires_grad_()
    F.linear(inputs, plain_weight[order], plain.bias[order]).square().sum().backward()
    assert torch.allclose(fast.weight.grad, plain_weight.grad, atol=TOL)


def _pairs(x: torch.Tensor) -> torch.Tensor:
    """`(tokens, 2, heads, head_dim)` queries and keys in `pair_order`."""
    tokens, _, heads, dim = x.shape
    values = torch.zeros(tokens, 1, heads, dim, dtype=x.dtype)
    permuted = torch.cat((x, values), dim=1).flatten(1)[:, pair_order(heads, dim)]
    return permuted.view(tokens, 3, heads, dim)[:, :2]


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rotary_on_pairs_is_rotary_in_pair_order(dtype):
    torch.manual_seed(0)
    x = torch.randn(11, 2, 4, 16).to(dtype)
    angles = torch.rand(11, 8) * 6
    cos, sin = angles.cos().to(dtype), angles.sin().to(dtype)
    want = _pairs(apply_rotary(x, cos, sin))
    pairs = _pairs(x)
    got = apply_rotary_to_pairs(pairs, cos, sin)
    assert (got is pairs) == (dtype == torch.float32)  # float32: rotated in place, one pass
    assert got.dtype == dtype
    assert (got.float() - want.float()).abs().max().item() <= (1e-6 if dtype == torch.float32 else 1e-2)


def test_rotary_on_pairs_passes_gradients_and_odd_layouts():
    torch.manual_seed(0)
    x = torch.randn(5, 2, 2, 8, requires_grad=True)
    angles = torch.rand(5, 4) * 6
    cos, sin = angles.cos(), angles.sin()
    weights = torch.randn(5, 2, 2, 8)
    (_pairs(apply_rotary(x, cos, sin)) * _pairs(weights)).sum().backward()
    pairs = _pairs(x.detach()).requires_grad_()
    (apply_rotary_to_pairs(pairs, cos, sin) * _pairs(weights)).sum().backward()
    assert torch.allclose(pairs.grad, _pairs(x.grad), atol=1e-6)
    odd = torch.randn(5 * 2 * 2 * 8 + 1)[1:].view(
        5, 2, 2, 8
    )  # an odd storage offset cannot be viewed as complex
    with torch.no_grad():
        want = apply_rotary_to_pairs(odd.clone(), cos, sin)
        got = apply_rotary_to_pairs(odd, cos, sin)
    assert got is not odd and torch.allclose(got, want, atol=1e-6)


def test_the_encoder_in_pair_order_trains_and_infers_as_the_plain_one():
    pair_order.cache_clear()
    with torch.inference_mode():  # embedding first, then fine-tuning in the same process
        pair_order(4, 16)
    torch.manual_seed(0)
    plain = RexBertForMaskedLM(tiny_config())
    fast = with_onednn_linear(copy.deepcopy(plain))
    ids, mask = random_batch([40, 7, 23, 1])
    labels = ids.masked_fill(torch.rand(ids.shape) > 0.3, -100).masked_fill(mask == 0, -100)
    for model in (plain, fast):
        model(ids, attention_mask=mask, labels=labels).loss.backward()
    for (name, want), got in zip(plain.named_parameters(), fast.parameters()):
        assert torch.allclose(got.grad, want.grad, atol=1e-5), name
    plain.eval(), fast.eval()
    with torch.inference_mode():
        want = plain.model(ids, attention_mask=mask).last_hidden_state
        got = fast.model(ids, attention_mask=mask).last_hidden_state
        on_grid = fast.model(
            ids, attention_mask=mask, output_attentions=True
        ).last_hidden_state  # padded path
    assert (got - want).abs().max().item() <= TOL
    assert (on_grid - want).abs().max().item() <= TOL


def test_int8_quantizes_a_copy_with_the_projection_in_pair_order():
    from torch.ao.quantization import quantize_dynamic

    from modeling_rexbert import with_int8_linear
    from modeling_rexbert.cpu_linear import FixedOrderLinear

    torch.manual_seed(0)
    model = RexBertModel(tiny_config()).eval()
    with torch.no_grad():  # peaked attention, so that a wrong rotary pairing shows in the outputs
        for layer in model.layers:
            layer.attn.Wqkv.weight.mul_(25.0)
    weights = {name: tensor.clone() for name, tensor in model.state_dict().items()}
    int8 = with_int8_linear(model)
    assert all(type(layer.attn.Wqkv) is torch.nn.Linear for layer in model.layers)  # the model is left alone
    assert all(torch.equal(weights[name], tensor) for name, tensor in model.state_dict().items())
    projections = [layer.attn.Wqkv for layer in int8.layers]
    dynamic_int8 = torch.ao.nn.quantized.dynamic.Linear
    assert all(type(p) is FixedOrderLinear and isinstance(p.linear, dynamic_int8) for p in projections)
    ids, mask = random_batch([40, 7, 23, 1])
    with torch.inference_mode():
        want = quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)(ids, attention_mask=mask)
        got = int8(ids, attention_mask=mask).last_hidden_state
        scale = want.last_hidden_state.abs().max().item()
        assert (got - want.last_hidden_state).abs().max().item() <= 1e-2 * scale
        inputs = torch.randn(3, 64)  # the padded path's call (no order), and another order: gathered
        plain_int8 = quantize_dynamic(
            torch.nn.Sequential(model.layers[0].attn.Wqkv), {torch.nn.Linear}, dtype=torch.qint8
        )
        assert torch.allclose(projections[0](inputs), plain_int8(inputs), atol=1e-6)
        reverse = torch.arange(191, -1, -1)
        got_reversed = projections[0](inputs, output_order=reverse)
        assert torch.allclose(got_reversed, plain_int8(inputs)[:, reverse], atol=1e-6)
        maps = int8(ids, attention_mask=mask, output_attentions=True)
        assert (maps.last_hidden_state - got).abs().max().item() <= 1e-2 * scale
