"""bfloat16 training on CPU, so the GPU's mixed-precision path is exercised in CI: autocast over float32
master weights (what `training_args: {bf16: true}` runs) on every attention backend, the GPU kernels
emulated (`modeling_rexbert.emulated_kernels`), with the dtype each kernel receives recorded; one optimizer
step tracks float32; the Trainer runs a few bf16 steps end to end."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from test_emulated_kernels import KERNELS, kernels, packed_batch, with_backend

from modeling_rexbert import RexBertForMaskedLM
from modeling_rexbert import emulated_kernels as emulated

LR = 1e-3


def mlm_labels(batch: dict, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    chosen = (torch.rand(batch["input_ids"].shape, generator=generator) < 0.3) & batch[
        "attention_mask"
    ].bool()
    return torch.where(chosen, batch["input_ids"], -100)


@pytest.fixture
def received(monkeypatch) -> list:
    """The dtypes (q, k, v, cu_seqlens) of every emulated kernel call."""
    calls, check = [], emulated.check_inputs

    def checked(q, k, v, cu_q, cu_k, *args, **kwargs):
        calls.append((q.dtype, k.dtype, v.dtype, cu_q.dtype))
        return check(q, k, v, cu_q, cu_k, *args, **kwargs)

    monkeypatch.setattr(emulated, "check_inputs", checked)
    return calls


@pytest.fixture
def dispatched(monkeypatch) -> list:
    """(backend, q, k, v dtypes) at every attention call of the model, whatever the backend."""
    from modeling_rexbert import layers

    calls, dispatch = [], layers.attention_forward

    def recording(implementation, query, key, value, *args, **kwargs):
        calls.append((implementation, query.dtype, key.dtype, value.dtype))
        return dispatch(implementation, query, key, value, *args, **kwargs)

    monkeypatch.setattr(layers, "attention_forward", recording)
    return calls


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("backend", ["sdpa", "eager", *KERNELS])
def test_every_backend_trains_under_bfloat16_autocast(backend, sparse, received, dispatched):
    """float32 weights under `torch.autocast(bfloat16)`: the loss is float32 and finite, every weight gets a
    finite float32 gradient, every backend is handed bfloat16 queries, keys and values, and a kernel
    (emulated, bfloat16 only) receives bfloat16 and int32 offsets."""
    batch = packed_batch()
    name = KERNELS[backend][0] if backend in KERNELS else backend
    model = with_backend(RexBertForMaskedLM, name, torch.float32, sparse_prediction=sparse)
    context = (
        kernels(backend, allow_float32=False)[0] if backend in KERNELS else emulated.installed(None, None)
    )
    with context, torch.autocast("cpu", dtype=torch.bfloat16):
        output = model(**batch, labels=mlm_labels(batch))
    output.loss.backward()
    assert output.loss.dtype == torch.float32 and torch.isfinite(output.loss)
    assert output.logits.dtype == torch.bfloat16  # the decoder ran in the autocast dtype, as a linear would
    for parameter_name, parameter in model.named_parameters():
        assert parameter.grad.dtype == torch.float32 and torch.isfinite(parameter.grad).all(), parameter_name
    assert set(dispatched) == {(name,) + (torch.bfloat16,) * 3}
    assert set(received) == ({(torch.bfloat16,) * 3 + (torch.int32,)} if backend in KERNELS else set())


def test_one_step_in_bfloat16_tracks_float32():
    """The fast path (sdpa), one AdamW step from the same weights on the same batch, float32 and bfloat16
    autocast: losses within 1e-3, gradients pointing the same way (cosine > 0.999 per tensor), and the
    weights after the step within bfloat16 tolerance: Adam's first step moves each weight by about `lr`, so a
    tiny gradient whose sign bfloat16 flips moves it 2 x lr the other way; that may happen to under 1% of
    the weights, and the mean difference stays under 2% of `lr`."""
    batch = packed_batch()
    labels = mlm_labels(batch)
    runs = {}
    for precision, autocast in (("float32", False), ("bfloat16", True)):
        model = with_backend(RexBertForMaskedLM, "sdpa", torch.float32)
        optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = model(**batch, labels=labels).loss
        loss.backward()
        gradients = {n: p.grad.clone() for n, p in model.named_parameters()}
        optimizer.step()
        runs[precision] = loss.item(), gradients, {n: p.detach().clone() for n, p in model.named_parameters()}
    (loss32, grads32, weights32), (loss16, grads16, weights16) = runs["float32"], runs["bfloat16"]
    assert abs(loss16 - loss32) < 1e-3 * loss32
    for name, gradient in grads32.items():
        assert F.cosine_similarity(gradient.flatten(), grads16[name].flatten(), dim=0) > 0.999, name
    differences = torch.cat([(weights32[n] - weights16[n]).abs().flatten() for n in weights32])
    assert differences.max() <= 2 * LR + 1e-7
    assert (differences > LR).float().mean() < 0.01 and differences.mean() < 0.02 * LR


def test_the_trainer_trains_a_few_bf16_steps(tmp_path, received):
    """`training_args: {bf16: true}` through `rexbert pretrain`'s Trainer on CPU, with the varlen_attn
    kernel (emulated, with its window): finite losses, bfloat16 at every kernel call, float32 weights kept."""
    from safetensors.torch import load_file

    from trainers.pretrain import pretrain
    from trainers.recipes import load_recipe

    no_validation = [
        "validation=null",
        *(f"phases.{p}.eval_steps=0" for p in ("general", "context", "anneal")),
    ]
    recipe = load_recipe(
        "tiny",
        [
            "training_args={bf16: true}",
            "model.attn_implementation=varlen_attn",
            "phases.general.steps=4",
            "phases.general.logging_steps=1",
            *no_validation,
        ],
    )
    with emulated.installed():
        pretrain(recipe, tmp_path / "run", phases=["general"])
    log = [json.loads(line) for line in (tmp_path / "run" / "phase1-general" / "train_log.jsonl").open()]
    losses = [entry["loss"] for entry in log if "loss" in entry]
    assert len(losses) == 4 and all(map(torch.isfinite, torch.tensor(losses)))
    assert received and set(received) == {(torch.bfloat16,) * 3 + (torch.int32,)}
    weights = load_file(tmp_path / "run" / "phase1-general" / "final" / "model.safetensors")
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in weights.values())
