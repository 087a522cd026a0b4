"""`kiln-lower-fused`: each `kiln.fused` group of elementwise ops becomes one `linalg.generic`.

`ELEMENTWISE_OPS` is the table both halves read: `kiln-fuse-elementwise` groups only the ops it
names, and this pass builds each op's scalar computation (arith/math on one element) from its row.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch_mlir import ir

from kiln.dialects.context import load_torch_conversion
from kiln.dialects.kiln import vtensor_shape, walk
from kiln.passes.graph_values import KnownValues
from kiln.passes.registry import PassContext, PassFailed, kiln_pass

Constant = int | float | bool | str | None


class Scalars:
    """Builds the scalar ops of one element at the current insertion point, in one float type."""

    def __init__(self, element_type: ir.Type) -> None:
        self.type = element_type

    def op(self, name: str, *operands: ir.Value, result: ir.Type | None = None,
           **attributes: ir.Attribute) -> ir.Value:
        """`name(operands)`, e.g. `op("math.tanh", x)`; the result has the float type by default."""
        created = ir.Operation.create(name, results=[result or self.type],
                                      operands=list(operands), attributes=attributes)
        return created.results[0]

    def const(self, value: Constant) -> ir.Value:
        """The float constant `value` (an int or float torch constant)."""
        assert isinstance(value, (int, float)), f"not a number: {value!r}"
        return self.op("arith.constant", value=ir.FloatAttr.get(self.type, float(value)))

    def compare(self, predicate: str, a: ir.Value, b: ir.Value) -> ir.Value:
        """`arith.cmpf` with `predicate` ("ogt", "une", ...) as an i1."""
        code = ir.IntegerAttr.get(ir.IntegerType.get_signless(64), _CMPF[predicate])
        return self.op("arith.cmpf", a, b, result=ir.IntegerType.get_signless(1), predicate=code)

    def plus(self, x: ir.Value, y: ir.Value, alpha: Constant = 1, sign: int = 1) -> ir.Value:
        """x + sign * alpha * y, the `add`/`sub` family with their `alpha`."""
        if alpha != 1:
            y = self.op("arith.mulf", y, self.const(alpha))
        return self.op("arith.addf" if sign > 0 else "arith.subf", x, y)

    def power(self, x: ir.Value, exponent: Constant) -> ir.Value:
        """x ** exponent: `math.fpowi` for an int exponent (exact for negative x), else powf."""
        if isinstance(exponent, int) and not isinstance(exponent, bool):
            i32 = ir.IntegerType.get_signless(32)
            n = self.op("arith.constant", result=i32, value=ir.IntegerAttr.get(i32, exponent))
            return self.op("math.fpowi", x, n)
        return self.op("math.powf", x, self.const(exponent))

    def sigmoid(self, x: ir.Value) -> ir.Value:
        """1 / (1 + exp(-x))."""
        one = self.const(1.0)
        denominator = self.op("arith.addf", one, self.op("math.exp", self.op("arith.negf", x)))
        return self.op("arith.divf", one, denominator)

    def gelu(self, x: ir.Value, approximate: Constant) -> ir.Value:
        """x * Φ(x) (erf form), or PyTorch's tanh approximation."""
        if approximate == "tanh":
            cube = self.op("arith.mulf", x, self.op("arith.mulf", x, x))
            inner = self.plus(x, cube, alpha=0.044715)
            inner = self.op("arith.mulf", inner, self.const(math.sqrt(2 / math.pi)))
            phi = self.op("math.tanh", inner)
        else:
            phi = self.op("math.erf", self.op("arith.mulf", x, self.const(math.sqrt(0.5))))
        half_x = self.op("arith.mulf", x, self.const(0.5))
        return self.op("arith.mulf", half_x, self.op("arith.addf", phi, self.const(1.0)))

    def clamp(self, x: ir.Value, low: Constant, high: Constant) -> ir.Value:
        """min(max(x, low), high), either bound optional; NaN stays NaN as in PyTorch."""
        if low is not None:
            x = self.op("arith.maximumf", x, self.const(low))
        if high is not None:
            x = self.op("arith.minimumf", x, self.const(high))
        return x


_CMPF = {"oeq": 1, "ogt": 2, "oge": 3, "olt": 4, "ole": 5, "une": 13}  # arith::CmpFPredicate

# Emit(scalars, tensor operands as element values, constant operands as Python values).
Emit = Callable[[Scalars, list[ir.Value], list[Constant]], ir.Value]


@dataclass(frozen=True)
class ScalarRule:
    """How one torch op computes one element, and which element types its operands take.

    kind "float": every tensor operand and the result share one float type; "compare": float
    operands, i1 result; "select": an i1 condition, then float operands of the result's type.
    """

    emit: Emit
    kind: str = "float"
    accepts: Callable[[list[Constant]], bool] = lambda constants: True


def _unary(name: str) -> ScalarRule:
    return ScalarRule(lambda s, t, c: s.op(name, t[0]))


def _binary(name: str) -> ScalarRule:
    return ScalarRule(lambda s, t, c: s.op(name, t[0], t[1]))


def _compare(predicate: str, scalar: bool) -> ScalarRule:
    if scalar:
        return ScalarRule(lambda s, t, c: s.compare(predicate, t[0], s.const(c[0])), "compare")
    return ScalarRule(lambda s, t, c: s.compare(predicate, t[0], t[1]), "compare")


def _numbers(constants: list[Constant]) -> bool:
    return all(isinstance(c, (int, float)) for c in constants)


def _bounds(constants: list[Constant]) -> bool:
    return all(c is None or isinstance(c, (int, float)) for c in constants)


# torch op -> its scalar computation. One row per op; `t` are tensor elements, `c` constants.
ELEMENTWISE_OPS: dict[str, ScalarRule] = {
    "torch.aten.tanh": _unary("math.tanh"),
    "torch.aten.exp": _unary("math.exp"),
    "torch.aten.log": _unary("math.log"),
    "torch.aten.log1p": _unary("math.log1p"),
    "torch.aten.expm1": _unary("math.expm1"),
    "torch.aten.sqrt": _unary("math.sqrt"),
    "torch.aten.rsqrt": _unary("math.rsqrt"),
    "torch.aten.erf": _unary("math.erf"),
    "torch.aten.sin": _unary("math.sin"),
    "torch.aten.cos": _unary("math.cos"),
    "torch.aten.abs": _unary("math.absf"),
    "torch.aten.floor": _unary("math.floor"),
    "torch.aten.ceil": _unary("math.ceil"),
    "torch.aten.neg": _unary("arith.negf"),
    "torch.aten.reciprocal": ScalarRule(lambda s, t, c: s.op("arith.divf", s.const(1.0), t[0])),
    "torch.aten.square": ScalarRule(lambda s, t, c: s.op("arith.mulf", t[0], t[0])),
    "torch.aten.relu": ScalarRule(lambda s, t, c: s.op("arith.maximumf", t[0], s.const(0.0))),
    "torch.aten.sigmoid": ScalarRule(lambda s, t, c: s.sigmoid(t[0])),
    "torch.aten.silu": ScalarRule(lambda s, t, c: s.op("arith.mulf", t[0], s.sigmoid(t[0]))),
    "torch.aten.gelu": ScalarRule(lambda s, t, c: s.gelu(t[0], c[0]),
                                  accepts=lambda c: c[0] in ("none", "tanh")),
    "torch.aten.add.Tensor": ScalarRule(lambda s, t, c: s.plus(t[0], t[1], c[0]), accepts=_numbers),
    "torch.aten.sub.Tensor": ScalarRule(lambda s, t, c: s.plus(t[0], t[1], c[0], -1),
                                        accepts=_numbers),
    "torch.aten.mul.Tensor": _binary("arith.mulf"),
    "torch.aten.div.Tensor": _binary("arith.divf"),
    "torch.aten.maximum": _binary("arith.maximumf"),
    "torch.aten.minimum": _binary("arith.minimumf"),
    "torch.aten.pow.Tensor_Tensor": _binary("math.powf"),
    "torch.aten.add.Scalar": ScalarRule(lambda s, t, c: s.plus(t[0], s.const(c[0]), c[1]),
                                        accepts=_numbers),
    "torch.aten.sub.Scalar": ScalarRule(lambda s, t, c: s.plus(t[0], s.const(c[0]), c[1], -1),
                                        accepts=_numbers),
    "torch.aten.rsub.Scalar": ScalarRule(lambda s, t, c: s.plus(s.const(c[0]), t[0], c[1], -1),
                                         accepts=_numbers),
    "torch.aten.mul.Scalar": ScalarRule(lambda s, t, c: s.op("arith.mulf", t[0], s.const(c[0])),
                                        accepts=_numbers),
    "torch.aten.div.Scalar": ScalarRule(lambda s, t, c: s.op("arith.divf", t[0], s.const(c[0])),
                                        accepts=_numbers),
    "torch.aten.pow.Tensor_Scalar": ScalarRule(lambda s, t, c: s.power(t[0], c[0]),
                                               accepts=_numbers),
    "torch.aten.clamp": ScalarRule(lambda s, t, c: s.clamp(t[0], c[0], c[1]), accepts=_bounds),
    "torch.aten.clamp_min": ScalarRule(lambda s, t, c: s.clamp(t[0], c[0], None),
                                       accepts=_numbers),
    "torch.aten.clamp_max": ScalarRule(lambda s, t, c: s.clamp(t[0], None, c[0]),
                                       accepts=_numbers),
    "torch.aten.where.self": ScalarRule(lambda s, t, c: s.op("arith.select", *t), "select"),
    "torch.aten.gt.Scalar": _compare("ogt", scalar=True),
    "torch.aten.ge.Scalar": _compare("oge", scalar=True),
    "torch.aten.lt.Scalar": _compare("olt", scalar=True),
    "torch.aten.le.Scalar": _compare("ole", scalar=True),
    "torch.aten.eq.Scalar": _compare("oeq", scalar=True),
    "torch.aten.ne.Scalar": _compare("une", scalar=True),
    "torch.aten.gt.Tensor": _compare("ogt", scalar=False),
    "torch.aten.ge.Tensor": _compare("oge", scalar=False),
    "torch.aten.lt.Tensor": _compare("olt", scalar=False),
    "torch.aten.le.Tensor": _compare("ole", scalar=False),
    "torch.aten.eq.Tensor": _compare("oeq", scalar=False),
    "torch.aten.ne.Tensor": _compare("une", scalar=False),
}

FLOAT_TYPES = ("f16", "bf16", "f32", "f64")
_INPUT_TYPES = (*FLOAT_TYPES, "i1")


def element_type_name(value_type: ir.Type) -> str | None:
    """"f32" for `!torch.vtensor<[4],f32>`; None for what is not a ranked vtensor."""
    if vtensor_shape(value_type) is None:
        return None
    return str(value_type).rstrip(">").rpartition(",")[2]


@kiln_pass("kiln-lower-fused")
def lower_fused(module: ir.Operation, ctx: PassContext) -> None:
    """Lower each `kiln.fused` group to one `linalg.generic` on builtin tensors.

    The group's inputs cross into builtin tensors with `torch_c.to_builtin_tensor` and its
    results come back with `torch_c.from_builtin_tensor`; torch-mlir's backend pipelines fold
    those casts. The iteration space is the result's shape; each input is read through an
    indexing map that broadcasts it numpy-style (right-aligned, size-1 dims read at 0).
    Every body op is lowered by its `ELEMENTWISE_OPS` row. Assumes static shapes and results
    of one shape (what kiln-fuse-elementwise forms); anything else is reported.
    Effect: none on its own; it is the lowering half of kiln-fuse-elementwise.
    """
    groups = [op for op in walk(module) if op.name == "kiln.fused"]
    if not groups:
        return
    load_torch_conversion()
    problems = [(group, problem) for group in groups if (problem := _problem(group))]
    for group, problem in problems:
        group.location.emit_error(f"'kiln.fused' {problem}")
    if problems:
        raise PassFailed
    for group in groups:
        _lower(group)
        ctx.count("kiln-lower-fused", "groups lowered")


def _problem(group: ir.Operation) -> str | None:
    """Why `group` cannot be lowered, in words, or None."""
    space = vtensor_shape(group.results[0].type)
    if space is None or -1 in space or any(r.type != group.results[0].type
                                           for r in group.results):
        return "results must be tensors of one static shape and type to become one linalg.generic"
    for op in group.regions[0].blocks[0].operations:
        if problem := _op_problem(op.operation):
            return problem
    for value in group.operands:
        shape = vtensor_shape(value.type)
        if shape is None or element_type_name(value.type) not in _INPUT_TYPES or not _broadcasts(
                shape, space):
            return (f"input {value.get_name()} must be a static float or i1 tensor that "
                    f"broadcasts to the result's shape {space}, not {value.type}")
    return None


def _op_problem(op: ir.Operation) -> str | None:
    if op.name == "kiln.yield" or op.name.startswith("torch.constant."):
        return None
    if (rule := ELEMENTWISE_OPS.get(op.name)) is None:
        return (f"holds '{op.name}', which has no scalar lowering; "
                "kiln-lower-fused knows the ops of ELEMENTWISE_OPS")
    if not any(element_type_name(v.type) in FLOAT_TYPES for v in op.operands):
        return f"holds '{op.name}' without a float tensor operand; only float math is lowered"
    known = KnownValues({})
    constants = [known.get(v) for v in op.operands if vtensor_shape(v.type) is None]
    if not rule.accepts(constants):  # type: ignore[arg-type]
        return f"holds '{op.name}' with operands {constants} that its table row does not take"
    return None


def _broadcasts(shape: Sequence[int], space: Sequence[int]) -> bool:
    """Whether static `shape` broadcasts numpy-style to static `space`."""
    offset = len(space) - len(shape)
    return offset >= 0 and all(size in (1, space[offset + k]) for k, size in enumerate(shape))


def _builtin(value_type: ir.Type) -> ir.RankedTensorType:
    """`tensor<4x8xf32>` for `!torch.vtensor<[4,8],f32>`."""
    shape, element = vtensor_shape(value_type), element_type_name(value_type)
    assert shape is not None and element is not None, f"not a ranked vtensor: {value_type}"
    return ir.RankedTensorType.get(shape, ir.Type.parse(element))


def broadcast_map(shape: Sequence[int], space: Sequence[int]) -> ir.AffineMap:
    """The map from the iteration `space` to an operand of `shape`: right-aligned, numpy-style."""
    offset = len(space) - len(shape)
    exprs = [ir.AffineConstantExpr.get(0) if size == 1 and space[offset + k] != 1
             else ir.AffineDimExpr.get(offset + k) for k, size in enumerate(shape)]
    return ir.AffineMap.get(len(space), 0, exprs)


def _lower(group: ir.Operation) -> None:
    """Replace `group` by casts in, one linalg.generic, casts out."""
    space = vtensor_shape(group.results[0].type) or []
    with ir.InsertionPoint(group), group.location:
        inputs = [_cast("torch_c.to_builtin_tensor", v, _builtin(v.type)) for v in group.operands]
        outs = [_empty(_builtin(r.type)) for r in group.results]
        maps = [broadcast_map(vtensor_shape(v.type) or [], space) for v in group.operands]
        maps += [ir.AffineMap.get_identity(len(space))] * len(outs)
        generic = _generic(inputs, outs, maps, len(space))
        _fill_body(group, generic)
        results = [_cast("torch_c.from_builtin_tensor", r, t.type)
                   for r, t in zip(generic.results, group.results)]
    for old, new in zip(group.results, results):
        old.replace_all_uses_with(new)
    group.erase()


def _cast(name: str, value: ir.Value, result: ir.Type) -> ir.Value:
    return ir.Operation.create(name, results=[result], operands=[value]).results[0]


def _empty(tensor_type: ir.RankedTensorType) -> ir.Value:
    return ir.Operation.create("tensor.empty", results=[tensor_type]).results[0]


def _generic(inputs: list[ir.Value], outs: list[ir.Value], maps: list[ir.AffineMap],
             rank: int) -> ir.Operation:
    """An all-parallel `linalg.generic` over `rank` loops with an empty body block."""
    parallel = ir.Attribute.parse("#linalg.iterator_type<parallel>")
    generic = ir.Operation.create(
        "linalg.generic", results=[o.type for o in outs], operands=[*inputs, *outs], regions=1,
        attributes={
            "indexing_maps": ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps]),
            "iterator_types": ir.ArrayAttr.get([parallel] * rank),
            "operandSegmentSizes": ir.DenseI32ArrayAttr.get([len(inputs), len(outs)]),
        })
    generic.regions[0].blocks.append(
        *[ir.RankedTensorType(v.type).element_type for v in [*inputs, *outs]])
    return generic


def _fill_body(group: ir.Operation, generic: ir.Operation) -> None:
    """Emit the scalar form of `group`'s body ops into `generic`'s block, then linalg.yield."""
    body = group.regions[0].blocks[0]
    block = generic.regions[0].blocks[0]
    elements: dict[ir.Value, ir.Value] = dict(zip(body.arguments, block.arguments))
    known = KnownValues({})
    with ir.InsertionPoint(block):
        for op in body.operations:
            op = op.operation
            if op.name == "kiln.yield":
                ir.Operation.create("linalg.yield", operands=[elements[v] for v in op.operands])
            elif (rule := ELEMENTWISE_OPS.get(op.name)) is not None:
                elements[op.results[0]] = _emit(op, rule, elements, known)


def _emit(op: ir.Operation, rule: ScalarRule, elements: dict[ir.Value, ir.Value],
          known: KnownValues) -> ir.Value:
    """The element of `op`'s result, from its tensor operands' elements and its constants."""
    tensors = [elements[v] for v in op.operands if vtensor_shape(v.type) is not None]
    constants = [known.get(v) for v in op.operands if vtensor_shape(v.type) is None]
    float_type = next((e.type for e in tensors if str(e.type) != "i1"), None)
    assert float_type is not None, f"{op.name} has no float operand"
    with op.location:
        return rule.emit(Scalars(float_type), tensors, constants)  # type: ignore[arg-type]
