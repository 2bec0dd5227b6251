"""Linear layers through oneDNN for CPU inference (`modeling_rexbert.with_onednn_linear`): nn.Linear's outputs
(checked against `F.linear` on the same weights) for every input shape, plain gradients when training, never a
stale reordered weight after the weight changes, the same state dict, copies that work, and the encoder's
outputs unchanged."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from model_helpers import random_batch, tiny_config

from modeling_rexbert import RexBertModel, with_onednn_linear
from modeling_rexbert.cpu_linear import ONEDNN_LINEAR_AVAILABLE, OneDnnLinear

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
