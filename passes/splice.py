"""Replace an op by the body of a function written as MLIR text (for passes on linalg).

Building linalg ops with regions through the Python bindings is verbose; the linalg passes
write what replaces an op as a textual `func.func`, whose arguments stand for the op's
operands, and splice its body in before the op.
"""

from __future__ import annotations

from torch_mlir import ir


def inline_function(text: str, operands: list[ir.Value], anchor: ir.Operation,
                    after: bool = False) -> list[ir.Value]:
    """Parse `text` (one `func.func` whose arguments are `operands`), move its body in
    before `anchor` (or after it), and return the values its `return` returned."""
    helper = ir.Module.parse(text, context=anchor.context)
    block = helper.body.operations[0].regions[0].blocks[0]
    for argument, operand in zip(block.arguments, operands, strict=True):
        argument.replace_all_uses_with(operand)
    *body, terminator = [op.operation for op in block.operations]
    for inner in reversed(body) if after else body:
        inner.move_after(anchor) if after else inner.move_before(anchor)
    return list(terminator.operands)


def splice_function(op: ir.Operation, text: str, operands: list[ir.Value]) -> None:
    """Parse `text` (one `func.func` whose arguments are `operands` and whose one result
    replaces `op`'s), move its body in before `op`, and erase `op`."""
    (result,) = inline_function(text, operands, op)
    op.results[0].replace_all_uses_with(result)
    op.erase()
