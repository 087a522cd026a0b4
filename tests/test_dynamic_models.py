"""Dynamic shapes on real architectures (issue 26): each family compiled once, with dynamic
dims, then called at three or more shapes, matching eager, running in IREE.

Families: an encoder (BERT), decoder LMs (GPT-2, Llama), a vision transformer (ViT) and a CNN
(tests/zoo.py's ResNet18), tiny `transformers` configs with random, seeded weights. For every
module: one IREE compilation (counted on a cache of this file's own, so no cached program hides
one), no compilation on a call, one IREE invocation per call, and InputError (naming the dim)
for a call outside the sizes it was compiled for: the dynamic_dims bounds, or the shapes
torch.export specialized the model to (GPT-2, unbounded, reads past its position table only
at run time: an IndexError there, as in eager).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
import torch
from torch import nn
from zoo import ResNet18

import kiln
import kiln.compiler
import kiln.runtime.compile

transformers = pytest.importorskip("transformers")

VOCAB = 500
TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}


@dataclass
class Counters:
    """Calls of Kiln's IREE compile step (cache hits included) and of IREE's compiler."""

    compile_linalg: list = field(default_factory=list)
    iree_compiles: list = field(default_factory=list)


@pytest.fixture(scope="module")
def counters(tmp_path_factory):
    """Count compilations for this file, on a fresh cache (a program cached by another test
    would compile zero times, hiding a second compilation as well as a first)."""
    found = Counters()
    real_linalg = kiln.compiler.compile_linalg
    real_iree = kiln.runtime.compile.compile_str

    def compile_linalg(*args, **kwargs):
        found.compile_linalg.append(1)
        return real_linalg(*args, **kwargs)

    def compile_str(*args, **kwargs):
        found.iree_compiles.append(1)
        return real_iree(*args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KILN_CACHE_DIR", str(tmp_path_factory.mktemp("dynamic-models-cache")))
        patch.setattr(kiln.compiler, "compile_linalg", compile_linalg)
        patch.setattr(kiln.runtime.compile, "compile_str", compile_str)
        yield found


class CountingContext:
    """An IREE VmContext that counts the invocations of the compiled entry function."""

    def __init__(self, real) -> None:
        self.real = real
        self.invocations = 0

    def invoke(self, function, inputs, results) -> None:
        self.invocations += 1
        self.real.invoke(function, inputs, results)


@dataclass
class Case:
    model: nn.Module
    compiled: kiln.CompiledModule
    counters: Counters
    context: CountingContext
    make_inputs: Callable[[tuple[int, ...], torch.Generator], tuple[torch.Tensor, ...]]
    compiles: tuple[int, int]   # (compile_linalg, IREE compiles) during kiln.compile


def _compile(counters: Counters, model: nn.Module, example: tuple, dynamic_dims: dict,
             make_inputs: Callable) -> Case:
    before = len(counters.compile_linalg), len(counters.iree_compiles)
    compiled = kiln.compile(model, example, dynamic_dims=dynamic_dims)
    compiles = (len(counters.compile_linalg) - before[0],
                len(counters.iree_compiles) - before[1])
    session = compiled.bind()
    session.context = CountingContext(session.context)
    return Case(model, compiled, counters, session.context, make_inputs, compiles)


def _ids(shape: tuple[int, ...], generator: torch.Generator) -> tuple[torch.Tensor]:
    return (torch.randint(1, VOCAB, shape, generator=generator),)


def _images(shape: tuple[int, ...], generator: torch.Generator) -> tuple[torch.Tensor]:
    return (torch.randn(shape, generator=generator),)


def _hf(config_class: str, model_class: str, **config) -> nn.Module:
    torch.manual_seed(0)
    config_obj = getattr(transformers, config_class)(**config)
    config_obj._attn_implementation = "eager"
    return getattr(transformers, model_class)(config_obj).eval()


class LastHiddenState(nn.Module):
    """A decoder called without a cache, returning its last hidden state."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.model(ids, use_cache=False).last_hidden_state


@pytest.fixture(scope="module")
def bert(counters):
    model = _hf("BertConfig", "BertModel", num_hidden_layers=2,
                hidden_size=64, num_attention_heads=2, intermediate_size=128, vocab_size=VOCAB)
    # A batch-1 example: Kiln widens it for tracing, the batch stays dynamic.
    return _compile(counters, model, _ids((1, 16), torch.Generator().manual_seed(0)),
                    {0: {0: (1, 8), 1: (1, 128)}}, _ids)


@pytest.fixture(scope="module")
def gpt2(counters):
    model = _hf("GPT2Config", "GPT2Model", use_cache=False, vocab_size=VOCAB, n_embd=64,
                n_layer=2, n_head=2, n_positions=64)
    return _compile(counters, LastHiddenState(model).eval(),
                    _ids((2, 16), torch.Generator().manual_seed(0)),
                    {0: [0, 1]}, _ids)   # unbounded: past its 64 positions see the index check


@pytest.fixture(scope="module")
def llama(counters):
    model = _hf("LlamaConfig", "LlamaModel", use_cache=False, vocab_size=VOCAB, hidden_size=64,
                num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                intermediate_size=128, max_position_embeddings=128)
    return _compile(counters, model, _ids((1, 16), torch.Generator().manual_seed(0)),
                    {0: {0: (1, 8), 1: (1, 128)}}, _ids)


@pytest.fixture(scope="module")
def vit(counters):
    model = _hf("ViTConfig", "ViTModel", image_size=32, patch_size=8, hidden_size=64,
                num_hidden_layers=2, num_attention_heads=2, intermediate_size=128)
    return _compile(counters, model, _images((1, 3, 32, 32), torch.Generator().manual_seed(0)),
                    {0: {0: (1, 16)}}, _images)


@pytest.fixture(scope="module")
def resnet(counters):
    torch.manual_seed(0)
    model = ResNet18(width=8, classes=10).eval()
    # At 64x64 the last stage is 2x2: export specializes to images whose last stage is >1.
    return _compile(counters, model, _images((1, 3, 64, 64), torch.Generator().manual_seed(0)),
                    {0: [0, 2, 3]}, _images)


CASES = ("bert", "gpt2", "llama", "vit", "resnet")
SHAPES = {
    "bert": [(1, 7), (3, 33), (2, 100), (8, 128), (1, 1)],
    "gpt2": [(1, 5), (3, 17), (2, 64), (12, 40)],
    "llama": [(1, 7), (3, 33), (2, 100), (8, 128)],
    "vit": [(1, 3, 32, 32), (3, 3, 32, 32), (16, 3, 32, 32)],
    "resnet": [(2, 3, 40, 40), (1, 3, 64, 64), (3, 3, 96, 96), (2, 3, 33, 33),
               (1, 3, 40, 72)],
}


def _case(request, name: str) -> Case:
    return request.getfixturevalue(name)


def _shape_id(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape))


@pytest.mark.parametrize("name, shape", [(name, shape) for name in CASES
                                         for shape in SHAPES[name]],
                         ids=[f"{name}-{_shape_id(shape)}" for name in CASES
                              for shape in SHAPES[name]])
def test_one_executable_matches_eager(request, name, shape):
    case = _case(request, name)
    inputs = case.make_inputs(shape, torch.Generator().manual_seed(hash(shape) % 2**31))
    with torch.no_grad():
        expected = case.model(*inputs)
    compiles = len(case.counters.compile_linalg), len(case.counters.iree_compiles)
    invocations = case.context.invocations
    got = case.compiled(*inputs)
    # Computed by the IREE executable, once, and nothing compiled for this shape.
    assert case.context.invocations == invocations + 1
    assert (len(case.counters.compile_linalg), len(case.counters.iree_compiles)) == compiles
    torch.testing.assert_close(got, expected, **TOLERANCE)


@pytest.mark.parametrize("name", CASES)
def test_compiled_once_with_dynamic_dims(request, name):
    case = _case(request, name)
    assert case.compiles == (1, 1), "one program, one IREE compilation, for every shape"
    assert case.compiled.signature.dynamic
    assert list(case.compiled.executables) and all(case.compiled.executables.values())


@pytest.mark.parametrize("name, describe", [("bert", "?x?:i64"), ("gpt2", "?x?:i64"),
                                            ("llama", "?x?:i64"), ("vit", "?x3x32x32:f32"),
                                            ("resnet", "?x3x?x?:f32")])
def test_signature_names_the_dynamic_dims(request, name, describe):
    assert _case(request, name).compiled.signature.inputs[0].describe() == describe


OUTSIDE = [
    # the dynamic_dims bounds
    ("bert", (2, 129), (r"input 0 dimension 1 is 129, outside the sizes this program was "
                        r"compiled for \(1\.\.128")),
    ("bert", (9, 16), (r"input 0 dimension 0 is 9, outside the sizes this program was "
                       r"compiled for \(1\.\.8")),
    ("llama", (1, 129), r"input 0 dimension 1 is 129, outside the sizes .*\(1\.\.128"),
    ("vit", (17, 3, 32, 32), r"input 0 dimension 0 is 17, outside the sizes .*\(1\.\.16"),
    # a static dim
    ("vit", (2, 3, 40, 40), (r"input 0 must have shape \?x3x32x32:f32, got \(2, 3, 40, 40\) "
                             r"\(dimension 2 is 40, not 32\)")),
    # torch.export specialized the ResNet to a last stage of more than one pixel (the 64x64
    # example's is 2x2): at 32 pixels it is 1, outside the program's shape guards. (The
    # executable, called past the guard, happens to match eager there: the guard is export's
    # specialization, conservatively kept.)
    ("resnet", (1, 3, 32, 32), (r"input 0 \(1, 3, 32, 32\): outside the shapes this program "
                                r"was compiled for, which need .*input0\.shape\[[23]\]")),
    ("resnet", (2, 3, 64, 32), (r"input 0 \(2, 3, 64, 32\): outside the shapes .*"
                                r"input0\.shape\[3\]")),
]


@pytest.mark.parametrize("name, shape, message", OUTSIDE,
                         ids=[f"{name}-{_shape_id(shape)}" for name, shape, _ in OUTSIDE])
def test_a_call_outside_the_compiled_shapes_is_an_input_error(request, name, shape, message):
    case = _case(request, name)
    invocations = case.context.invocations
    with pytest.raises(kiln.InputError, match=message):
        case.compiled(*case.make_inputs(shape, torch.Generator().manual_seed(0)))
    assert case.context.invocations == invocations, "checked before IREE runs"


def test_a_sequence_past_the_position_table_is_an_index_error_as_in_eager(gpt2):
    """GPT-2's dims are unbounded and export records no guard for its position table (it
    indexes it with arange(sequence)): at 65 positions the program's index check fails, as
    eager's embedding does, rather than reading past the table."""
    (ids,) = _ids((2, 65), torch.Generator().manual_seed(0))
    with pytest.raises(IndexError, match="index out of range"), torch.no_grad():
        gpt2.model(ids)
    with pytest.raises(kiln.IndexCheckError, match=r"index out of range: embedding got an "
                                                   r"index outside dimension 0"):
        gpt2.compiled(ids)


def test_the_resnet_guard_sits_where_the_last_stage_becomes_one_pixel(resnet):
    """What the guard stands for: at 32 pixels the last stage is 1x1, the size the 64x64
    example's 2x2 was specialized away from; at 33 pixels (served above) it is 2x2."""
    stages = []
    hook = resnet.model.layers.register_forward_hook(
        lambda module, args, out: stages.append(tuple(out.shape[2:])))
    try:
        with torch.no_grad():
            resnet.model(torch.randn(1, 3, 32, 32))
            resnet.model(torch.randn(1, 3, 33, 33))
    finally:
        hook.remove()
    assert stages == [(1, 1), (2, 2)]
