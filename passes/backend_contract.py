"""`kiln-check-backend-contract`: stop before torch-mlir's linalg lowering meets an open type.

torch-mlir's `torch-backend-to-linalg-on-tensors-backend-pipeline` assumes every tensor has a
rank and a dtype; on one that has not (a value TorchScript types as plain `Tensor` that no
refinement reached, e.g. inside a branch the shapes did not decide), some of its patterns
dereference a null type and crash the process (scaled_dot_product_attention did). This pass
runs just before it and turns each such op into a diagnostic naming the op and its line.
It names the other inputs torch-mlir 20261001 was seen to crash on too: complex tensors,
unsigned matrix products (a segfault), and views and matrix products of empty tensors
(`unfold` and `bilinear` of a batch of 0 divided by zero: SIGFPE).
"""

from __future__ import annotations

import re

import torch
from torch_mlir import ir

from kiln.dialects.kiln import vtensor_shape, walk
from kiln.passes.graph_values import vtensor_dtype
from kiln.passes.registry import PassContext, PassFailed, kiln_pass

PASS = "kiln-check-backend-contract"


# Matrix products torch-mlir's linalg lowering crashes the process on (torch-mlir 20261001)
# when their operands are unsigned (kiln-widen-unsigned leaves none).
_MATMULS = frozenset({"torch.aten.mm", "torch.aten.bmm", "torch.aten.matmul",
                      "torch.aten.linear", "torch.aten.addmm", "torch.aten.baddbmm"})
# Ops whose lowering divides by a size, and so by zero on an empty tensor (SIGFPE: a view
# with -1 infers the size it leaves). `unfold` and `bilinear` of a batch of 0 met them;
# elementwise ops, reductions and convolutions do not.
_EMPTY_CRASHES = frozenset(f"torch.aten.{name}" for name in (
    "view", "reshape", "_reshape_alias", "_unsafe_view", "flatten.using_ints", "unflatten.int"))
_COMPLEX = re.compile(r",complex<\w+>>$")


# A ranked value tensor with a known dtype: `!torch.vtensor<[2,?],f32>`.
_RANKED = re.compile(r"^!torch\.vtensor<\[[^\]]*\],(?!unk>)\w+>$")


def open_tensor_type(value_type: ir.Type) -> bool:
    """A `!torch.vtensor` without sizes or dtype (list elements are open in torch-mlir's own
    form, `!torch.list<vtensor>`, and are not counted)."""
    text = str(value_type)
    return text.startswith("!torch.vtensor") and _RANKED.match(text) is None


@kiln_pass(PASS)
def check_backend_contract(module: ir.Operation, ctx: PassContext) -> None:
    """Fail, naming each torch op whose operands or results have no known rank or dtype.

    Effect: none on programs torch-mlir can lower; a CompileError instead of a segfault in
    torch-mlir on the others.
    """
    failed = False
    for op in walk(module):
        if not op.name.startswith("torch.") or op.name.startswith("torch.constant."):
            continue
        values = [*op.operands, *op.results]
        if any(_COMPLEX.search(str(v.type)) for v in values):
            problem = "has a complex tensor: Kiln does not compile complex dtypes yet"
        elif any(open_tensor_type(v.type) for v in values):
            problem = ("has a tensor of unknown rank or dtype, which torch-mlir cannot lower; "
                       "Kiln could not refine it")
        elif op.name in _MATMULS and (problem := _matmul_problem(op)):
            pass
        elif op.name in _EMPTY_CRASHES and any(0 in (vtensor_shape(v.type) or ())
                                               for v in values):
            problem = ("has an empty tensor (a dimension of size 0), on which torch-mlir's "
                       "lowering of it divides by zero")
        else:
            continue
        op.location.emit_error(f"'{op.name}' {problem}")
        failed = True
        ctx.count(PASS, "ops rejected")
    if failed:
        raise PassFailed


def _matmul_problem(op: ir.Operation) -> str | None:
    """Why torch-mlir would crash on this matrix product, or None."""
    if any(vtensor_dtype(v.type) == torch.uint8 for v in op.operands):
        return "multiplies unsigned integer matrices, which torch-mlir cannot lower"
    first = op.operands[1 if op.name.endswith(("addmm", "baddbmm")) else 0]
    if (vtensor_shape(first.type) or [None])[-1:] == [0]:
        return ("has an empty contracted dimension (K = 0), on which torch-mlir's lowering "
                "crashed")
    return None
