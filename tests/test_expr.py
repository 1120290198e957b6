"""The custom op's expression language: evaluation, rejection of everything else, limits.

Framework-free: the numpy reference evaluator stands in for both frameworks here.
"""

from __future__ import annotations

import ast
import builtins
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from probes.errors import ExpressionError
from probes.spec import TensorInfo
from probes.spec.custom_grad import sample_arrays
from probes.spec.expr import Binary, Const, Reduce, Var, parse, show, walk
from probes.spec.expr_eval import NUMPY, lower
from probes.spec.expr_shapes import count_macs, infer_shape
from probes.spec.ops_custom import CustomParams, compile_custom, numpy_forward

RNG = np.random.default_rng(7)
A = RNG.standard_normal((2, 4, 3))  # batch 2, per-sample [4, 3]
B = RNG.standard_normal((2, 3))  # per-sample [3]: broadcasts along A's last axis


def sig(v: np.ndarray) -> np.ndarray:
    return np.asarray(1.0 / (1.0 + np.exp(-v)))


VALID: list[tuple[str, Callable[[np.ndarray, np.ndarray], np.ndarray]]] = [
    ("x * sigmoid(beta * x)", lambda a, b: a * sig(1.5 * a)),
    ("x0 + x1", lambda a, b: a + b[:, None, :]),
    ("-x + +x1 * 2 - 3 / x0 ** 2", lambda a, b: -a + b[:, None, :] * 2 - 3 / a**2),
    ("abs(x) ** -1.5 * 0.5 + abs(x) ** 0.5", lambda a, b: np.abs(a) ** -1.5 / 2 + np.abs(a) ** 0.5),
    ("where(x > 0, x, 0.1 * x)", lambda a, b: np.where(a > 0, a, 0.1 * a)),
    ("where(x1 <= x0, 1.0, 0.0)", lambda a, b: (b[:, None, :] <= a).astype(float)),
    ("where(x != 0, x, 0) + where(x == x, 0, 1)", lambda a, b: a),
    ("clip(x, -0.5, beta)", lambda a, b: np.clip(a, -0.5, 1.5)),
    ("minimum(x, 0.2) + maximum(x0, x1)",
     lambda a, b: np.minimum(a, 0.2) + np.maximum(a, b[:, None])),
    ("sum(x, axis=0)", lambda a, b: a.sum(axis=1)),
    ("x - mean(x, axis=-1, keepdims=True)", lambda a, b: a - a.mean(axis=2, keepdims=True)),
    ("x - max(x, axis=0)", lambda a, b: a - a.max(axis=1)[:, None, :]),
    ("min(x, axis=1)", lambda a, b: a.min(axis=2)),
    ("x / sum(sum(exp(x), axis=0), axis=0)",  # a rank-0 intermediate, aligned after batch
     lambda a, b: a / np.exp(a).sum(axis=(1, 2))[:, None, None]),
    ("exp(x) + log(abs(x)) + log1p(abs(x)) + sqrt(abs(x)) + rsqrt(abs(x) + 1)",
     lambda a, b: np.exp(a) + np.log(np.abs(a)) + np.log1p(np.abs(a)) + np.sqrt(np.abs(a))
     + 1 / np.sqrt(np.abs(a) + 1)),
    ("tanh(x) + relu(x) + sin(x) + cos(x) + square(x)",
     lambda a, b: np.tanh(a) + np.maximum(a, 0) + np.sin(a) + np.cos(a) + a * a),
    ("erf(x) * exp(2.0) + 2 ** 3", lambda a, b: np.vectorize(math.erf)(a) * math.exp(2.0) + 8),
]  # fmt: skip


@pytest.mark.parametrize(("src", "expected"), VALID, ids=[s for s, _ in VALID])
def test_valid_expressions_match_numpy(src: str, expected: Callable[..., np.ndarray]) -> None:
    e = parse(src, constants={"beta": 1.5})
    got = lower(e, NUMPY, {"x0": A, "x1": B})
    want = expected(A, B)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    shape = infer_shape(e, {"x0": (4, 3), "x1": (3,)})
    assert (2, *(shape or ())) == want.shape


def test_ir_is_typed_immutable_and_folds_constants() -> None:
    e = parse("x * (2 * 3) + sum(x1, axis=-1, keepdims=True)")
    assert e == Binary(
        "add", Binary("mul", Var("x0"), Const(6.0)), Reduce("sum", Var("x1"), -1, True)
    )
    with pytest.raises(AttributeError):
        e.op = "sub"  # type: ignore[misc]
    assert show(e) == "((x0 * 6.0) + sum(x1, axis=-1, keepdims=True))"
    assert [type(n).__name__ for n in walk(e)] == [
        "Binary", "Binary", "Var", "Const", "Reduce", "Var"
    ]  # fmt: skip


def test_macs_count_elementwise_outputs_and_reduction_inputs() -> None:
    e = parse("x * sigmoid(x) + mean(x, axis=0, keepdims=True)")
    # mul, sigmoid, add over 12 elements each; mean reads 12 elements
    assert count_macs(e, {"x0": (4, 3)}) == 4 * 12


INJECTIONS = [
    ("__import__('os')", "unknown function `__import__`"),
    ("__import__('os').system('true')", "attribute access"),
    ("x.__class__", "attribute access is not allowed (`x.__class__` at col 1)"),
    ("().__class__.__bases__", "attribute access"),
    ("(1).__class__", "attribute access"),
    ("lambda: 1", "lambda is not allowed"),
    ("(lambda: x)()", "call a function by name"),
    ("[i for i in x]", "comprehension is not allowed"),
    ("{i: i for i in x}", "comprehension"),
    ("(i for i in x)", "generator"),
    ("open('f')", "unknown function `open`"),
    ("eval('1')", "unknown function `eval`"),
    ("exp.__globals__", "attribute access"),
    ("exp", "must be called"),
    ("globals()", "unknown function"),
    ("x ** 1e9", "exponent 1e+09 is too large"),
    ("x ** x", "exponent of ** must be a numeric literal"),
    ("9**9**9", "exponent of ** must be a numeric literal"),
    ("((9**9)**9)**9 + x", "no finite real value"),  # folded in floats: overflows, no bigint
    ("1e6 ** 16 ** 1", "exponent of ** must be a numeric literal"),
    ("x[0]", "subscripting is not allowed"),
    ("x[::-1]", "subscripting"),
    ("f'{x}'", "f-string"),
    ("'abc'", "str literals are not allowed"),
    ("b'abc'", "bytes literals"),
    ("x and x", "boolean and/or"),
    ("not x", "unary `Not`"),
    ("x if x > 0 else 0", "use where(c, a, b)"),
    ("(y := x)", "assignment expression"),
    ("*x", "syntax error"),
    ("exp(*[x])", "starred"),
    ("x; import os", "syntax error"),
    ("import os", "syntax error"),
    ("1e999 + x", "finite"),
    ("1234567.0 * x", "|c| <= 1e+06"),
    ("1" * 1999, "|c| <= 1e+06"),
    ("x @ x", "operator `MatMult`"),
    ("x % 2", "operator `Mod`"),
    ("True * x", "bool literals"),
    ("None", "NoneType literals"),
    ("...", "ellipsis literals"),
    ("1j * x", "complex literals"),
    ("y * 2", "only available in grad expressions"),
    ("x8", "unknown name `x8`"),
    ("x01", "unknown name `x01`"),
    ("foo", "unknown name `foo`"),
    ("x\x00", "'\\x00' at col 2 is not allowed"),
    ("x + \u00e9", "at col 5 is not allowed"),
    ("\uff58", "at col 1"),  # fullwidth x: Python would NFKC-normalise it to `x`
    ("", "empty expression"),
    ("   ", "empty expression"),
    ("1 < x < 2", "chained comparisons"),
    ("x > 0", "comparison cannot be the result"),
    ("exp(x > 0)", "comparison cannot be an argument"),
    ("where(x, x, x)", "must be a comparison"),
    ("where(1 > 2, x, x)", "between two constants"),
    ("clip(x, x, 1)", "clip bounds must be constants"),
    ("clip(x, 1, 0)", "lo <= hi"),
    ("exp(x, x)", "takes 1 argument"),
    ("exp(x, axis=1)", "takes no keyword arguments"),
    ("sum(x)", "needs axis=k"),
    ("sum(x, 0)", "one positional argument"),
    ("sum(x, axis=x)", "axis must be an integer literal"),
    ("sum(x, axis=0.5)", "axis must be an integer literal"),
    ("sum(x, axis=99)", "|axis| <= 7"),
    ("sum(x, axis=0, keepdims=1)", "keepdims must be True or False"),
    ("sum(x, axis=0, dtype=1)", "only the keywords axis= and keepdims="),
    ("sum(x, axis=0, axis=1)", "only the keywords"),
    ("sum(x, **{'axis': 0})", "only the keywords"),
    ("sum(x, axis=__import__('os'))", "axis must be an integer literal"),
    ("sum(2.0, axis=0)", "of a constant"),
    ("exp(1000.0) + x", "no finite real value"),
    ("log(0.0) + x", "no finite real value"),
    ("(-8) ** 0.5 + x", "no finite real value"),
    ("1 / 0 + x", "no finite real value"),
    ("(" * 1000 + "x" + ")" * 1000, "characters; the limit is 2000"),
    ("(" * 300 + "x" + ")" * 300, "syntax error: too many nested parentheses"),
    ("-" * 1999 + "x", "nested deeper than 32 levels"),
    ("exp(" * 40 + "x" + ")" * 40, "nested deeper than 32 levels"),
    ("a" * 100_000, "100000 characters; the limit is 2000"),
]


@pytest.mark.parametrize(("src", "fragment"), INJECTIONS, ids=[s[:40] for s, _ in INJECTIONS])
def test_rejected_with_a_clear_error(src: str, fragment: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(src)
    assert fragment in info.value.message, info.value.message
    assert info.value.node is None and info.value.code == "bad_expression"


def balanced(depth: int) -> str:
    return "x" if depth == 0 else f"({balanced(depth - 1)}+{balanced(depth - 1)})"


def test_node_count_limit() -> None:
    assert sum(1 for _ in walk(parse(balanced(7)))) == 255  # shallow (depth 8) and small
    with pytest.raises(ExpressionError, match="more than 256 nodes"):
        parse(balanced(8))  # 511 nodes, depth 9, 1021 characters


@pytest.mark.parametrize("exc", [RecursionError, MemoryError, ValueError, OverflowError])
def test_parser_failures_become_expression_errors(exc: type[Exception]) -> None:
    with (
        mock.patch("probes.spec.expr.ast.parse", side_effect=exc("boom")),
        pytest.raises(ExpressionError, match=f"cannot be parsed \\({exc.__name__}\\)"),
    ):
        parse("x")


def test_not_a_string() -> None:
    with pytest.raises(ExpressionError, match="must be a string, found int"):
        parse(42)


def test_constants_cannot_shadow_reserved_names() -> None:
    for name in ("x", "x3", "g", "y", "exp", "sum"):
        with pytest.raises(ExpressionError, match="reserved"):
            parse("x", constants={name: 1.0})


class Sentinel:
    hit = False


SENTINEL = Sentinel()


@contextmanager
def no_execution() -> Iterator[list[str]]:
    """Fail on any eval/exec/import, and on compile other than to an AST (ast.parse)."""
    calls: list[str] = []
    real_compile = builtins.compile

    def forbid(name: str) -> Callable[..., Any]:
        def fn(*args: Any, **kw: Any) -> Any:
            calls.append(name)
            raise AssertionError(f"{name} called during parse")

        return fn

    def ast_only(src: Any, filename: Any, mode: str, flags: int = 0, *a: Any, **kw: Any) -> Any:
        if not flags & ast.PyCF_ONLY_AST:
            calls.append("compile")
            raise AssertionError("compile to code during parse")
        return real_compile(src, filename, mode, flags, *a, **kw)

    with (
        mock.patch.object(builtins, "eval", forbid("eval")),
        mock.patch.object(builtins, "exec", forbid("exec")),
        mock.patch.object(builtins, "__import__", forbid("__import__")),
        mock.patch.object(builtins, "compile", ast_only),
    ):
        yield calls


TOKENS = [
    *("x", "x0", "x1", "x7", "x9", "g", "y", "beta", "SENTINEL", "os", "hit"),
    *("exp", "sum", "max", "where", "clip", "sigmoid", "minimum", "open", "setattr"),
    *("eval", "exec", "globals", "__import__", "__class__", "__globals__", "__builtins__"),
    *("(", ")", "[", "]", "{", "}", ",", ".", ":", ";", "=", ":=", "**", "*", "+", "-"),
    *("/", "//", "%", "@", "~", "<", "<=", "==", "!=", "not", "and", "or", "if", "else"),
    *("lambda", "for", "in", "yield", "await", "import", "True", "None", "...", "'hit'"),
    *("0", "1", "2.5", "1e9", "9", "-1", "axis=", "keepdims=", "axis=0", " ", "\n", "\x00"),
    "setattr(SENTINEL, 'hit', True)",
    "__import__('tests.test_expr').test_expr.SENTINEL",
    "(lambda: setattr(SENTINEL, 'hit', 1))()",
    "[setattr(SENTINEL, 'hit', 1) for _ in (1,)]",
]
SOUP = st.lists(st.sampled_from(TOKENS), max_size=40)
ATOMS = st.sampled_from(
    [
        *("x", "x0", "x1", "x7", "g", "y", "beta", "SENTINEL", "0", "1", "2.5", "1e9", "-1"),
        *("True", "'hit'", "()", "None", "exp", "__builtins__"),
    ]
)
CALLEES = st.sampled_from(
    ["exp", "sigmoid", "minimum", "clip", "relu", "square", "setattr", "eval", "__import__"]
)


def _grammar(kids: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Syntactically valid Python mixing allowed and forbidden constructs."""
    ops = st.sampled_from(["+", "-", "*", "/", "**", "<", "==", "and", "@", "%", "if 1 else"])
    return st.one_of(
        st.builds(lambda a, op, b: f"({a} {op} {b})", kids, ops, kids),
        st.builds(lambda f, args: f"{f}({', '.join(args)})", CALLEES, st.lists(kids, max_size=3)),
        st.builds(
            lambda f, a, k, v: f"{f}({a}, {k}={v})",
            st.sampled_from(["sum", "mean", "max", "min", "exp", "setattr"]),
            kids,
            st.sampled_from(["axis", "keepdims", "dtype"]),
            st.sampled_from(["0", "-1", "True", "x", "__import__('os')"]),
        ),
        st.builds(lambda a, attr: f"{a}.{attr}", kids, st.sampled_from(["__class__", "hit"])),
        st.builds(lambda a, i: f"{a}[{i}]", kids, kids),
        st.builds(lambda a: f"(lambda: {a})()", kids),
        st.builds(lambda a: f"-{a}", kids),
        st.builds(lambda c, a, b: f"where({c} > 0, {a}, {b})", kids, kids, kids),
    )


SOURCES = st.one_of(
    st.text(max_size=200),
    SOUP.map("".join),
    SOUP.map(" ".join),
    st.recursive(ATOMS, _grammar, max_leaves=12),
    st.recursive(ATOMS, _grammar, max_leaves=12),
)


@settings(max_examples=200, deadline=None)
@given(SOURCES)
def test_fuzz_never_executes_and_only_raises_expression_errors(src: str) -> None:
    params = CustomParams(name="f", forward="x", constants={"beta": 0.5})
    with no_execution() as calls:
        try:
            e = parse(src, constants=params.constants, grad=True)
        except ExpressionError as err:
            assert err.message
            e = None
    assert not calls and not SENTINEL.hit
    if e is None or any(isinstance(n, Var) and n.name in ("g", "y") for n in walk(e)):
        return
    try:  # whatever parses must also shape-check or fail cleanly, and evaluate
        prog = compile_custom(params.model_copy(update={"forward": src}), [TensorInfo((3, 4))] * 2)
    except ExpressionError:
        return
    out = numpy_forward(prog, sample_arrays(prog, batch=2)[0])
    assert out.shape == (2, *prog.out_shape)


def test_execution_guard_would_notice() -> None:
    """Negative control for the fuzz test: the guard and the sentinel do detect execution."""
    with no_execution() as calls, pytest.raises(AssertionError):
        eval("1")
    assert calls == ["eval"]
    snippet = next(t for t in TOKENS if t.startswith("setattr("))
    probe = Sentinel()
    exec(snippet, {"SENTINEL": probe, "setattr": setattr})
    assert probe.hit and not SENTINEL.hit
