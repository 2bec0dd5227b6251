"""The GPU attention paths (`flash_attention_2`, `varlen_attn`) run in CI on CPU emulations of their kernels
(`modeling_rexbert.emulated_kernels`): the emulations check arguments as the kernels do and compute what
they document, and the model's paths through them match sdpa and eager forward and backward, on packed rows
(several documents per row, position ids restarting) and on ragged batches, global and local layers.

float32 comparisons (the emulations told to accept float32) check the arithmetic exactly: a window off by
one, wrong offsets or a misread layout show up at 1e-5. bfloat16 comparisons run the kernels' real dtype
contract at bfloat16 tolerance, and record the dtype each kernel receives."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from model_helpers import random_batch, tiny_config

from modeling_rexbert import RexBertForMaskedLM, RexBertModel
from modeling_rexbert import emulated_kernels as emulated
from modeling_rexbert.attention import takes_window

# ---- the kernels themselves ------------------------------------------------------------------------------


def packed_qkv(lengths, heads=4, head_dim=16, dtype=torch.float32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    total = sum(lengths)
    q, k, v = (torch.randn(total, heads, head_dim, generator=generator).to(dtype) for _ in range(3))
    cu = torch.tensor([0, *torch.tensor(lengths).cumsum(0).tolist()], dtype=torch.int32)
    return q, k, v, cu


def reference_attention(q, k, v, cu, left, right):
    """Per document, SDPA with an explicit boolean mask `i - left <= j <= i + right` (independent of the
    emulation's arithmetic), in float32."""
    outputs = []
    offsets = cu.tolist()
    for start, end in zip(offsets, offsets[1:]):
        i = torch.arange(end - start)[:, None]
        j = torch.arange(end - start)[None, :]
        mask = torch.ones(end - start, end - start, dtype=torch.bool)
        if left >= 0:
            mask &= j >= i - left
        if right >= 0:
            mask &= j <= i + right
        qs, ks, vs = (t[start:end].float().transpose(0, 1) for t in (q, k, v))
        outputs.append(F.scaled_dot_product_attention(qs, ks, vs, attn_mask=mask).transpose(0, 1))
    return torch.cat(outputs)


LENGTHS = [1, 7, 33, 64]
WINDOWS = [(-1, -1), (3, 3), (8, 8), (3, 0), (0, 5)]


@pytest.mark.parametrize("window", WINDOWS)
def test_flash_emulation_computes_the_documented_window(window):
    q, k, v, cu = packed_qkv(LENGTHS)
    kernel = emulated.EmulatedFlashAttnVarlen(allow_float32=True)
    got = kernel(q, k, v, cu, cu, 64, 64, window_size=window)
    assert (got - reference_attention(q, k, v, cu, *window)).abs().max() < 1e-6
    half = [t.to(torch.bfloat16) for t in (q, k, v)]
    got = emulated.flash_attn_varlen_func(*half, cu, cu, 64, 64, window_size=window)
    want = reference_attention(*half, cu, *window).to(torch.bfloat16)  # same inputs, fp32 math, one rounding
    assert got.dtype == torch.bfloat16 and (got.float() - want.float()).abs().max() <= 2**-7


def test_causal_is_a_right_window_of_zero_and_aligned_bottom_right():
    q, k, v, cu = packed_qkv(LENGTHS)
    kernel = emulated.EmulatedFlashAttnVarlen(allow_float32=True)
    assert torch.equal(
        kernel(q, k, v, cu, cu, 64, 64, causal=True), kernel(q, k, v, cu, cu, 64, 64, window_size=(-1, 0))
    )
    # 2 queries over 4 keys: flash aligns the last query with the last key, so query 0 sees keys 0..2
    values = torch.eye(4).view(4, 1, 4)
    query, key = torch.zeros(2, 1, 4), torch.zeros(4, 1, 4)
    cu_q, cu_k = torch.tensor([0, 2], dtype=torch.int32), torch.tensor([0, 4], dtype=torch.int32)
    weights = kernel(query, key, values, cu_q, cu_k, 2, 4, causal=True)[:, 0]
    assert torch.allclose(weights, torch.tensor([[1 / 3, 1 / 3, 1 / 3, 0], [0.25, 0.25, 0.25, 0.25]]))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"cu": torch.int64}, "cu_seqlens_q must have dtype int32"),
        ({"dtype": torch.float32}, "FlashAttention only support fp16 and bf16 data type"),
        ({"k_dtype": torch.float16}, "query and key must have the same dtype"),
        ({"strided": True}, "Input tensor must have contiguous last dimension"),
        ({"max_seqlen": 63}, "max_seqlen_q=63 is shorter than the longest sequence (64)"),
        ({"max_seqlen": 64.0}, "max_seqlen_q=64.0 is shorter"),
        ({"heads_k": 3}, "Number of heads in key/value must divide number of heads in query"),
        ({"head_dim": 320}, "FlashAttention forward only supports head dimension at most 256"),
        ({"total": -1}, "cu_seqlens_q must rise from 0 to the 105 tokens"),
        ({"cu_device": "meta"}, "cu_seqlens_q must be on the same device as the query"),
    ],
)
def test_flash_emulation_refuses_what_the_kernel_refuses(change, message):
    q, k, v, cu = packed_qkv(LENGTHS, head_dim=change.get("head_dim", 16), dtype=torch.bfloat16)
    q = q.to(change.get("dtype", q.dtype))
    k = k.to(change.get("k_dtype", k.dtype))
    if change.get("strided"):
        q = torch.randn(q.shape[0], q.shape[1], q.shape[2] * 2).to(q.dtype)[..., ::2]
    if "heads_k" in change:
        k = v = k[:, : change["heads_k"]]
    cu_q = cu.to(change.get("cu", torch.int32))
    if change.get("total"):
        cu_q = torch.cat([cu_q[:-1], cu_q[-1:] + change["total"]])
    if "cu_device" in change:
        cu_q = cu_q.to(change["cu_device"])
    with pytest.raises(RuntimeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        emulated.flash_attn_varlen_func(q, k, v, cu_q, cu, change.get("max_seqlen", 64), 64)


def test_torch_varlen_emulations_keep_their_versions_signatures():
    q, k, v, cu = packed_qkv(LENGTHS, dtype=torch.bfloat16)
    with_window, without_window = emulated.varlen_attn, emulated.varlen_attn_without_window
    assert takes_window(with_window) and not takes_window(without_window)
    assert torch.equal(
        with_window(q, k, v, cu, cu, 64, 64, window_size=(-1, 0)),
        without_window(q, k, v, cu, cu, 64, 64, is_causal=True),
    )
    with pytest.raises(TypeError, match="unexpected keyword argument 'window_size'"):
        without_window(q, k, v, cu, cu, 64, 64, window_size=(3, 3))
    with pytest.raises(ValueError, match="Try setting enable_gqa=True"):
        with_window(q, k[:, :2], v[:, :2], cu, cu, 64, 64)
    assert with_window(q, k[:, :2], v[:, :2], cu, cu, 64, 64, enable_gqa=True).shape == q.shape


# ---- the model's GPU paths through them ------------------------------------------------------------------

KERNELS = {  # backend, the emulations installed, and whether local layers reach the kernel
    "flash_attention_2": ("flash_attention_2", dict(flash=emulated.EmulatedFlashAttnVarlen), True),
    "varlen_attn (torch 2.13)": (
        "varlen_attn",
        dict(torch_varlen=lambda **o: emulated.EmulatedTorchVarlen(True, **o)),
        True,
    ),
    "varlen_attn (torch 2.11)": (
        "varlen_attn",
        dict(torch_varlen=lambda **o: emulated.EmulatedTorchVarlen(False, **o)),
        False,
    ),
}


def kernels(name: str, allow_float32: bool):
    """The emulations for one backend (the other kernel left out, as on a machine without it)."""
    _, factories, _ = KERNELS[name]
    made = {role: factory(allow_float32=allow_float32) for role, factory in factories.items()}
    return emulated.installed(flash=made.get("flash"), torch_varlen=made.get("torch_varlen")), made


def packed_batch():
    """Two rows: three documents packed in the first (37, 5 and 60 tokens, positions restarting; 60 is
    longer than the 16-token window, 5 shorter), a 41-token document and padding in the second."""
    lengths = [37, 5, 60, 41]
    docs, _ = random_batch(lengths, seed=3)
    ids = torch.zeros(2, 106, dtype=torch.long)
    positions = torch.zeros_like(ids)
    mask = torch.zeros_like(ids)
    start = 0
    for doc, n in zip(docs[:3], lengths[:3]):
        ids[0, start : start + n], positions[0, start : start + n], mask[0, start : start + n] = (
            doc[:n],
            torch.arange(n),
            1,
        )
        start += n
    ids[1, :41], positions[1, :41], mask[1, :41] = docs[3, :41], torch.arange(41), 1
    return {"input_ids": ids, "attention_mask": mask, "position_ids": positions}


def ragged_batch():
    ids, mask = random_batch([40, 7, 23, 1, 33], seed=1)
    return {"input_ids": ids, "attention_mask": mask}


BATCH_KINDS = {"packed": packed_batch, "ragged": ragged_batch}


def with_backend(model_class, backend: str, dtype, seed: int = 0, **overrides):
    """A tiny model on `backend`. Built on sdpa, then switched: transformers refuses `flash_attention_2`
    at construction when the flash-attn package is missing, while RexBERT dispatches by name per call."""
    torch.manual_seed(seed)
    model = model_class(tiny_config(**overrides)).to(dtype)
    model.config._attn_implementation = backend
    return model


def run_backend(backend: str, batch: dict, dtype, seed: int = 0):
    """Encoder states on real tokens and the parameter gradients of a fixed function of them."""
    model = with_backend(RexBertModel, backend, dtype, seed)
    hidden = model(**batch).last_hidden_state
    real = batch["attention_mask"].bool()
    weights = torch.linspace(-1, 1, hidden.shape[-1], dtype=hidden.dtype)
    (hidden[real] * weights).float().sum().backward()
    return hidden[real].detach().float(), {n: p.grad.float() for n, p in model.named_parameters()}


@pytest.mark.parametrize("batch_kind", list(BATCH_KINDS))
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_gpu_paths_equal_sdpa_and_eager_in_float32(kernel, batch_kind):
    """The kernels' arithmetic (emulated, float32 allowed) through the model: outputs and gradients equal
    the sdpa and eager paths to 1e-5, local layers included."""
    backend = KERNELS[kernel][0]
    batch = BATCH_KINDS[batch_kind]()
    context, made = kernels(kernel, allow_float32=True)
    with context:
        got, got_grads = run_backend(backend, batch, torch.float32)
    for reference in ("sdpa", "eager"):
        want, want_grads = run_backend(reference, batch, torch.float32)
        difference = (got - want).abs().max().item()
        assert difference < 1e-5, f"{kernel} vs {reference}: outputs differ by up to {difference:.1e}"
        for name, grad in want_grads.items():
            difference = (got_grads[name] - grad).abs().max().item()
            assert difference < 1e-4, f"{kernel} vs {reference}: d/d {name} differs by up to {difference:.1e}"


@pytest.mark.parametrize("batch_kind", list(BATCH_KINDS))
@pytest.mark.parametrize("kernel", list(KERNELS))
def test_gpu_paths_in_bfloat16_within_bfloat16_tolerance(kernel, batch_kind, monkeypatch):
    """The kernels' real dtype contract (bfloat16 only): forward and backward run, every kernel call gets
    bfloat16 tensors and int32 offsets, and the result is within bfloat16 tolerance of float32 sdpa."""
    backend, _, local_layers_use_kernel = KERNELS[kernel]
    batch = BATCH_KINDS[batch_kind]()
    context, made = kernels(kernel, allow_float32=False)
    received, windows = [], set()
    check, attend = emulated.check_inputs, emulated.attend

    def checked(q, k, v, cu_q, cu_k, *args, **kwargs):
        received.append((q.dtype, k.dtype, v.dtype, cu_q.dtype, cu_k.dtype))
        return check(q, k, v, cu_q, cu_k, *args, **kwargs)

    def attended(q, k, v, offsets_q, offsets_k, scale, left, right, dropout):
        windows.add((left, right))
        return attend(q, k, v, offsets_q, offsets_k, scale, left, right, dropout)

    monkeypatch.setattr(emulated, "check_inputs", checked)
    monkeypatch.setattr(emulated, "attend", attended)
    with context:
        got, got_grads = run_backend(backend, batch, torch.bfloat16)
    want, _ = run_backend("sdpa", batch, torch.float32)
    assert set(received) == {(torch.bfloat16,) * 3 + (torch.int32,) * 2}
    local = {(8, 8)} if local_layers_use_kernel else set()  # local_attention 16: 8 tokens a side, inclusive
    assert windows == {(-1, -1)} | local
    assert (got - want).abs().max() / want.abs().max() < 3e-2
    assert all(torch.isfinite(g).all() for g in got_grads.values())


def test_masked_lm_trains_through_the_emulated_flash_kernel_in_bfloat16():
    """A masked-LM step under flash_attention_2 (emulated) in bfloat16: finite loss, gradients that point
    where float32 sdpa's do."""
    batch = packed_batch()
    labels = torch.where(batch["attention_mask"].bool(), batch["input_ids"], -100)
    losses, grads = {}, {}
    for backend, dtype in (("flash_attention_2", torch.bfloat16), ("sdpa", torch.float32)):
        model = with_backend(RexBertForMaskedLM, backend, dtype)
        with emulated.installed():
            loss = model(**batch, labels=labels).loss
            loss.backward()
        losses[backend] = loss.item()
        grads[backend] = torch.cat([p.grad.float().flatten() for p in model.parameters()])
    assert abs(losses["flash_attention_2"] - losses["sdpa"]) < 0.05 * losses["sdpa"]
    assert F.cosine_similarity(grads["flash_attention_2"], grads["sdpa"], dim=0) > 0.99


def test_what_the_model_checks_before_a_kernel():
    batch = ragged_batch()
    model = with_backend(RexBertModel, "flash_attention_2", torch.float32)
    with emulated.installed(flash=None), pytest.raises(ImportError, match="needs the flash-attn package"):
        model(**batch)
    with (
        emulated.installed(),
        pytest.raises(ValueError, match="needs float16 or bfloat16 weights, got torch.float32"),
    ):
        model(**batch)
    model = with_backend(RexBertModel, "varlen_attn", torch.bfloat16, attention_dropout=0.1).train()
    with emulated.installed(), pytest.raises(ValueError, match="has no attention dropout"):
        model(**batch)
