"""The packed CPU attention kernel (`modeling_rexbert/cpu_attention.cpp`): the eager reference's outputs on
ragged documents (every tile remainder, windows narrower and wider than documents, strided inputs, large
scores); the encoder with it against transformers' ModernBERT; every call it must leave to SDPA (gradients,
bfloat16, dropout, non-consecutive positions, export); and what happens where it cannot be built."""

from __future__ import annotations

import pytest
import torch
from model_helpers import max_diff_on_real_tokens, paired_models, random_batch, tiny_config
from transformers import ModernBertModel

from modeling_rexbert import RexBertModel, attention, cpu_attention
from modeling_rexbert.unpadding import PackedBatch

TOL = 1e-5
LENGTHS = [1, 2, 5, 6, 7, 13, 16, 17, 63, 64, 65, 130, 300]  # every remainder of the 6-row and 16-key tiles


@pytest.fixture
def kernel():
    if not cpu_attention.load_packed_cpu_attention():
        pytest.skip("the CPU attention kernel cannot run here (it needs AVX-512 and a C++ compiler)")
    return attention.packed_cpu_attention


@pytest.fixture
def kernel_calls(kernel, monkeypatch):
    """The number of calls the sdpa backend hands to the kernel."""
    calls = []

    def counted(*args):
        calls.append(args[0].shape)
        return kernel(*args)

    monkeypatch.setattr(attention, "packed_cpu_attention", counted)
    return calls


def _packed(lengths, heads=3, scale=1.0, positions=None, seed=0):
    """Queries, keys and values as strided views of one `(tokens, 3, heads, 64)` projection."""
    generator = torch.Generator().manual_seed(seed)
    qkv = scale * torch.randn(sum(lengths), 3, heads, 64, generator=generator)
    if positions is None:
        positions = torch.cat([torch.arange(n) for n in lengths])
    cu_seqlens = torch.tensor([0, *lengths]).cumsum(0).to(torch.int32)
    batch = PackedBatch(1, len(positions), None, positions, cu_seqlens, max(lengths))
    return (*qkv.unbind(1), batch)


@pytest.mark.parametrize("window", [None, 1, 8, 64, 400], ids=lambda w: f"window={w}")
def test_kernel_gives_eager_attention(kernel, window):
    query, key, value, batch = _packed(LENGTHS)
    assert not query.is_contiguous()
    expected = attention.eager_attention(query, key, value, batch, window, 0.0)
    got = kernel(query, key, value, batch.cu_seqlens, -1 if window is None else window)
    assert got.shape == expected.shape
    assert (got - expected).abs().max() < TOL


def test_large_scores_stay_finite_and_exact(kernel):
    """Scores in the hundreds: the softmax subtracts each row's largest score before its exponential."""
    query, key, value, batch = _packed([5, 40, 97], scale=6.0)
    for window in (None, 8):
        expected = attention.eager_attention(query, key, value, batch, window, 0.0)
        got = kernel(query, key, value, batch.cu_seqlens, -1 if window is None else window)
        assert torch.isfinite(got).all()
        assert (got - expected).abs().max() < 1e-4 * expected.abs().max()


def test_kernel_refuses_what_it_cannot_compute(kernel):
    query, key, value, batch = _packed([4, 5])
    with pytest.raises(RuntimeError, match="head"):
        kernel(query[..., :32], key[..., :32], value[..., :32], batch.cu_seqlens, -1)
    with pytest.raises(RuntimeError, match="cu_seqlens must run"):
        kernel(query, key, value, torch.tensor([0, 4], dtype=torch.int32), -1)
    with pytest.raises(RuntimeError, match="cu_seqlens must not decrease"):
        kernel(query, key, value, torch.tensor([0, 6, 3, 9], dtype=torch.int32), -1)
    with pytest.raises(RuntimeError, match="float32"):
        kernel(query.double(), key.double(), value.double(), batch.cu_seqlens, -1)


@pytest.mark.parametrize("mode", [torch.no_grad, torch.inference_mode])
def test_encoder_with_kernel_gives_modernbert_outputs(kernel_calls, mode):
    config = tiny_config(hidden_size=128, num_attention_heads=2, local_attention=16)
    ours, reference = paired_models(RexBertModel, ModernBertModel, config, "sdpa")
    ids, mask = random_batch([70, 9, 33, 1, 17])
    with mode():
        got = ours(input_ids=ids, attention_mask=mask).last_hidden_state
        expected = reference(input_ids=ids, attention_mask=mask).last_hidden_state
    assert len(kernel_calls) == config.num_hidden_layers
    assert max_diff_on_real_tokens(got, expected, mask) < TOL


def test_sdpa_keeps_the_calls_the_kernel_does_not_compute(kernel_calls):
    query, key, value, batch = _packed([30, 12])
    for window in (None, 8):
        reference = attention.eager_attention(query, key, value, batch, window, 0.0)
        trained = [t.clone().requires_grad_() for t in (query, key, value)]
        out = attention.sdpa_attention(*trained, batch, window, 0.0)
        out.sum().backward()
        assert all(t.grad is not None for t in trained)
        assert (out - reference).abs().max() < TOL
        bf16 = attention.sdpa_attention(
            query.bfloat16(), key.bfloat16(), value.bfloat16(), batch, window, 0.0
        )
        assert bf16.dtype == torch.bfloat16
        attention.sdpa_attention(query, key, value, batch, window, 0.1)  # dropout
    # positions 0, 2, 4...: a window over positions is not one over offsets
    query, key, value, batch = _packed(
        [30, 12], positions=torch.cat([2 * torch.arange(30), torch.arange(12)])
    )
    with torch.no_grad():
        strided = attention.sdpa_attention(query, key, value, batch, 8, 0.0)
    assert (strided - attention.eager_attention(query, key, value, batch, 8, 0.0)).abs().max() < TOL
    assert kernel_calls == []


def test_export_traces_sdpa_not_the_kernel(kernel_calls):
    config = tiny_config(hidden_size=128, num_attention_heads=2, num_hidden_layers=2, local_attention=16)
    model = RexBertModel(config).eval()
    ids, mask = random_batch([12, 5])
    with torch.no_grad():
        exported = torch.export.export(model, (), {"input_ids": ids, "attention_mask": mask})
        eager = model(input_ids=ids, attention_mask=mask).last_hidden_state
        replayed = exported.module()(input_ids=ids, attention_mask=mask).last_hidden_state
    assert kernel_calls == [(17, 2, 64)] * 2  # the eager run only
    assert "rexbert" not in str(exported.graph)
    assert max_diff_on_real_tokens(replayed, eager, mask) < TOL


def test_without_avx512_it_warns_once_and_sdpa_stays(monkeypatch):
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    with pytest.warns(
        UserWarning, match="the CPU runs AVX2, the kernel needs AVX512; attention runs on SDPA"
    ):
        assert cpu_attention._checked_kernel.__wrapped__() is None


def test_a_failed_build_warns_and_sdpa_stays(monkeypatch):
    def no_compiler():
        raise RuntimeError("Error building extension 'rexbert_cpu_attention'\nc++: not found")

    monkeypatch.setattr(cpu_attention, "_build", no_compiler)
    with pytest.warns(UserWarning, match=r"did not build \(RuntimeError: c\+\+: not found\)"):
        assert cpu_attention._checked_kernel.__wrapped__() is None


@pytest.mark.timeout(120)
def test_a_build_killed_earlier_does_not_hang_the_next(kernel):
    """torch's build lock is a file: one left by a killed build would make every later build wait forever."""
    stale = cpu_attention.build_directory() / "lock"
    stale.touch()
    cpu_attention._build()
    assert not stale.exists()
