# Copyright 2026 The RexBERT authors. Licensed under the Apache License, Version 2.0.
"""Linear layers through oneDNN for float32 inference on a CPU.

An encoder's time on a CPU is mostly its linear layers (63% of the 17m encoder's time on a catalogue, the
rest attention and element-wise work). torch runs a float32 `nn.Linear` through its BLAS (MKL in the
official wheels), and MKL takes slow code paths on CPUs that are not Intel's. Measured on the 2-core AMD
EPYC (AVX-512) this project is developed on, torch 2.13, 2 threads, the 17m layer shapes (256 -> 768):

    rows    F.linear (MKL)   MkldnnLinear   oneDNN, weight reordered once
    37      124 GFLOP/s      115            226
    512     169              326            361
    1,500   167              329            394
    8,192   167              242            305

(MKL's packed-weight GEMM, `torch.ops.mkl._mkl_linear`: 103-166 at 512-8,192 rows), so the same
matrix products run about twice as fast through oneDNN, with the weight reordered once into its blocked
layout. No public torch call does that on plain tensors: `torch.utils.mkldnn.MkldnnLinear`
converts every input to oneDNN's tensor type and every output back (10-25% slower above). `OneDnnLinear`
calls the operator inductor emits for CPU linear layers
(`torch.ops.mkldnn._linear_pointwise`, with `torch.ops.mkldnn._reorder_linear_weight`), and is otherwise an
`nn.Linear`: the same parameters, state dict, `isinstance` and outputs (to float32 rounding: ~2e-6 on
values of order 1). It takes the oneDNN path only where that is exact and safe:

- the input is a float32 CPU tensor and no gradient is wanted (`torch.no_grad`/`inference_mode`, or
  frozen weights): training and every other device or dtype run `F.linear`, unchanged, and so do
  `torch.compile` and `torch.export` (they trace `F.linear`; inductor then picks its own kernels);
- the reordered weight is rebuilt whenever the weight changes (its version counter and storage): an
  optimizer step, `load_state_dict` or `.to()` never leaves a stale copy. The copy is never saved or
  deep-copied; it costs one more copy of the linear weights in memory (4 bytes per weight).

    from modeling_rexbert import with_onednn_linear

    model = with_onednn_linear(model)  # any torch module: every exact nn.Linear inside it

A caller may ask for the outputs in another order (`layer(x, output_order=index)`, the same as
`F.linear(x, weight[index], bias[index])` on every path): the reordered copy is then built from the rows in
that order, so the permutation costs nothing per call. RexBERT's attention uses it to receive each query and
key head with its rotary pairs side by side (`rotary.apply_rotary_to_pairs`).

Where torch was built without oneDNN, `with_onednn_linear` leaves the model as it is.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .fast_path import swap_modules
from .rotary import pair_order

__all__ = [
    "ONEDNN_LINEAR_AVAILABLE",
    "FixedOrderLinear",
    "OneDnnLinear",
    "with_int8_linear",
    "with_onednn_linear",
]


def _onednn_linear_available() -> bool:
    if not torch.backends.mkldnn.is_available():
        return False
    try:
        return all(hasattr(torch.ops.mkldnn, op) for op in ("_linear_pointwise", "_reorder_linear_weight"))
    except (RuntimeError, AttributeError):
        return False


ONEDNN_LINEAR_AVAILABLE = _onednn_linear_available()


class OneDnnLinear(nn.Linear):
    """`nn.Linear` whose CPU float32 inference runs through oneDNN (see the module docstring)."""

    # (weight version, storage address, output order, reordered weight)
    _reordered: tuple[int, int, torch.Tensor | None, torch.Tensor] | None = None
    takes_output_order = True  # what RexBERT's attention looks for (it does not import this module)

    @classmethod
    def wrapping(cls, linear: nn.Linear) -> OneDnnLinear:
        """A `OneDnnLinear` holding `linear`'s own parameters (shared, not copied) and mode."""
        module = cls.__new__(cls)
        nn.Module.__init__(module)
        module.in_features, module.out_features = linear.in_features, linear.out_features
        module.weight, module.bias = linear.weight, linear.bias
        return module.train(linear.training)

    def forward(self, input: torch.Tensor, output_order: torch.Tensor | None = None) -> torch.Tensor:
        """`F.linear(input, weight, bias)`, its output features in `output_order` when given (an index)."""
        weight, bias = self.weight, self.bias
        if output_order is not None and bias is not None:
            bias = bias.index_select(0, output_order.to(bias.device))
        if (  # compilers and exporters trace plain linear (inductor chooses its own kernels)
            torch.compiler.is_compiling()
            or input.device.type != "cpu"
            or input.dtype != torch.float32
            or weight.dtype != torch.float32
            or (torch.is_grad_enabled() and (weight.requires_grad or input.requires_grad))
        ):
            if output_order is not None:
                weight = weight.index_select(0, output_order.to(weight.device))
            return F.linear(input, weight, bias)
        reordered = self._reordered_weight(output_order)
        return torch.ops.mkldnn._linear_pointwise(input, reordered, bias, "none", [], "")

    def _reordered_weight(self, output_order: torch.Tensor | None) -> torch.Tensor:
        weight = self.weight
        try:
            version = weight._version
        except RuntimeError:  # an inference tensor (created under inference_mode) cannot change: no counter
            version = -1
        cached = self._reordered
        if cached is None or cached[:2] != (version, weight.data_ptr()) or cached[2] is not output_order:
            with torch.no_grad():
                rows = weight.detach() if output_order is None else weight.detach()[output_order]
                reordered = torch.ops.mkldnn._reorder_linear_weight(rows)
            self._reordered = cached = (version, weight.data_ptr(), output_order, reordered)
        return cached[3]

    def __getstate__(self):  # copies and pickles rebuild the oneDNN copy on first use
        state = super().__getstate__()
        state.pop("_reordered", None)
        return state


def with_onednn_linear(model: nn.Module) -> nn.Module:
    """`model` with every exact `nn.Linear` inside it (or `model` itself) replaced by a `OneDnnLinear` sharing
    its parameters; unchanged where torch has no oneDNN."""
    if not ONEDNN_LINEAR_AVAILABLE:
        return model
    return swap_modules(model, lambda module: type(module) is nn.Linear, OneDnnLinear.wrapping)


class FixedOrderLinear(nn.Module):
    """A linear layer whose output rows were put in one `order` once, for a layer that cannot reorder per call
    (the int8 copy `quantize_dynamic` makes of the `linear` inside). Calls with `output_order=order` (what
    RexBERT's attention asks for) cost nothing more; any other order, or none (the padded path's call), is
    gathered from it."""

    takes_output_order = True

    def __init__(self, linear: nn.Linear, order: torch.Tensor):
        super().__init__()
        self.linear = nn.Linear(linear.in_features, linear.out_features, linear.bias is not None)
        self.linear.load_state_dict(
            {name: tensor.detach()[order] for name, tensor in linear.state_dict().items()}
        )
        self.register_buffer("order", order.clone(), persistent=False)
        self.register_buffer("inverse", torch.argsort(order), persistent=False)

    def forward(self, input: torch.Tensor, output_order: torch.Tensor | None = None) -> torch.Tensor:
        output = self.linear(input)
        if output_order is not None:
            output_order = output_order.to(self.order.device)
            if torch.equal(output_order, self.order):
                return output
        wanted = self.inverse if output_order is None else self.inverse[output_order]
        return output.index_select(-1, wanted)


def with_int8_linear(model: nn.Module) -> nn.Module:
    """A copy of `model` with dynamic int8 linear layers (`torch.ao.quantization.quantize_dynamic`: int8
    weights, one scale per tensor; activations quantized per batch; fbgemm uses the CPU's VNNI instructions).

    RexBERT's query/key/value projections are quantized with their rows in rotary pair order
    (`rotary.pair_order`), so their int8 outputs come with each rotary pair side by side and rotary runs in
    place as for `OneDnnLinear` (quantizing permuted rows gives the permuted int8 layer: the scale is per
    tensor). On the 17m catalogue embedding that made int8 1.03-1.18x faster (alternated rounds). Exact
    `nn.Linear` layers are quantized (not `OneDnnLinear` ones); `model` itself is left as it is."""
    from torch.ao.quantization import quantize_dynamic

    model = copy.deepcopy(model)
    for module in list(model.modules()):
        projection = getattr(module, "Wqkv", None)
        if type(projection) is nn.Linear and hasattr(module, "head_dim"):
            module.Wqkv = FixedOrderLinear(projection, pair_order(module.num_heads, module.head_dim))
    return quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8, inplace=True)
