"""The ``custom`` op's expression language: a whitelisted parser into a small typed IR.

Safety argument: the source is parsed with ``ast.parse(mode="eval")``, which only builds
a syntax tree; nothing is compiled to code or executed. The tree is then walked, and every
node type, name and function is checked against a fixed whitelist before it becomes IR.
Unknown names, attributes, subscripts, lambdas, comprehensions, keywords other than
``axis``/``keepdims`` and large exponents are rejected. Constant sub-expressions are
folded with ``math`` on floats, with bounded exponents, so nothing can grow without limit.
Framework-free: stdlib only (see docs/spec.md, "The custom op").
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Mapping
from typing import cast

from probes.errors import ExpressionError
from probes.spec.expr_ir import (
    BINARY_FUNCS,
    FOLD,
    FUNCTIONS,
    GRAD_NAMES,
    INPUT_NAME,
    MAX_INPUTS,
    REDUCTIONS,
    UNARY_FUNCS,
    Binary,
    BinOp,
    Call,
    CmpOp,
    Compare,
    Const,
    Expr,
    Reduce,
    ReduceFn,
    Unary,
    Var,
    children,
    is_reserved,
    show,
    walk,
)

__all__ = [
    "MAX_INPUTS",
    "Binary",
    "Call",
    "Compare",
    "Const",
    "Expr",
    "Reduce",
    "Unary",
    "Var",
    "children",
    "is_reserved",
    "parse",
    "show",
    "walk",
]

MAX_SOURCE, MAX_DEPTH, MAX_NODES = 2000, 32, 256
MAX_LITERAL, MAX_EXPONENT, MAX_AXIS = 1e6, 16, 7

BINOPS: dict[type[ast.operator], BinOp] = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul"}
BINOPS |= {ast.Div: "div", ast.Pow: "pow"}
CMPOPS: dict[type[ast.cmpop], CmpOp] = {ast.Lt: "lt", ast.LtE: "le", ast.Gt: "gt"}
CMPOPS |= {ast.GtE: "ge", ast.Eq: "eq", ast.NotEq: "ne"}
REJECTED = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripting",
    ast.Lambda: "lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.BoolOp: "boolean and/or",
    ast.IfExp: "a conditional expression (use where(c, a, b))",
    ast.JoinedStr: "an f-string",
    ast.Starred: "starred unpacking",
    ast.NamedExpr: "an assignment expression",
    ast.Tuple: "a tuple",
    ast.List: "a list",
    ast.Dict: "a dict",
    ast.Set: "a set",
}


def parse(src: object, *, constants: Mapping[str, float] | None = None, grad: bool = False) -> Expr:
    """Parse one expression into IR, or raise ExpressionError saying what and where.

    Names: ``x`` (first input), ``x0``..``x7``, the ``constants``, and in grad
    expressions ``g`` (upstream gradient) and ``y`` (the forward output).
    """
    if not isinstance(src, str):
        raise ExpressionError(f"an expression must be a string, found {type(src).__name__}")
    if len(src) > MAX_SOURCE:
        raise ExpressionError(f"expression is {len(src)} characters; the limit is {MAX_SOURCE}")
    bad = next((i for i, ch in enumerate(src) if not _allowed_char(ch)), None)
    if bad is not None:
        raise ExpressionError(f"character {src[bad]!r} at col {bad + 1} is not allowed")
    if not src.strip():
        raise ExpressionError("empty expression")
    for name in constants or {}:
        if is_reserved(name):
            raise ExpressionError(f"constant name `{name}` is reserved")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(src, mode="eval")
    except SyntaxError as e:
        raise ExpressionError(f"syntax error: {e.msg} (col {e.offset or '?'})") from None
    except (RecursionError, MemoryError, ValueError, OverflowError) as e:
        raise ExpressionError(f"expression cannot be parsed ({type(e).__name__})") from None
    return _Parser(src, dict(constants or {}), grad).number(tree.body, 1, "the result")


def _allowed_char(ch: str) -> bool:
    return (ch.isascii() and ch.isprintable()) or ch in " \t\r\n"


def _literal(n: ast.expr) -> float | None:
    """A numeric literal, optionally signed; None if ``n`` is anything else."""
    sign = 1.0
    if isinstance(n, ast.UnaryOp) and isinstance(n.op, ast.USub | ast.UAdd):
        sign, n = (-1.0 if isinstance(n.op, ast.USub) else 1.0), n.operand
    v = n.value if isinstance(n, ast.Constant) else None
    if isinstance(v, int | float) and not isinstance(v, bool):
        return sign * (float(v) if abs(v) < 1e300 else math.inf)  # huge ints: no overflow
    return None


class _Parser:
    def __init__(self, src: str, constants: dict[str, float], grad: bool) -> None:
        self.src, self.constants, self.grad, self.count = src, constants, grad, 0

    def where(self, n: ast.AST) -> str:
        seg = ast.get_source_segment(self.src, n) or type(n).__name__
        seg = seg if len(seg) <= 40 else seg[:37] + "..."
        return f"(`{seg}` at col {getattr(n, 'col_offset', 0) + 1})"

    def fail(self, what: str, n: ast.AST) -> ExpressionError:
        return ExpressionError(f"{what} {self.where(n)}")

    def enter(self, n: ast.expr, depth: int) -> None:
        """Count the node; fail past the size and depth limits or on a rejected construct."""
        self.count += 1
        if self.count > MAX_NODES:
            raise self.fail(f"expression has more than {MAX_NODES} nodes", n)
        if depth > MAX_DEPTH:
            raise self.fail(f"expression is nested deeper than {MAX_DEPTH} levels", n)
        for kind, what in REJECTED.items():
            if isinstance(n, kind):
                raise self.fail(f"{what} is not allowed", n)

    def expr(self, n: ast.expr, depth: int) -> Expr:
        self.enter(n, depth)
        if isinstance(n, ast.Constant):
            return self.constant(n)
        if isinstance(n, ast.Name):
            return self.name(n)
        if isinstance(n, ast.UnaryOp):
            return self.unary(n, depth)
        if isinstance(n, ast.BinOp):
            return self.binary(n, depth)
        if isinstance(n, ast.Compare):
            return self.compare(n, depth)
        if isinstance(n, ast.Call):
            return self.call(n, depth)
        raise self.fail(f"{type(n).__name__} is not allowed", n)

    def number(self, n: ast.expr, depth: int, what: str) -> Expr:
        e = self.expr(n, depth)
        if isinstance(e, Compare):
            raise self.fail(f"a comparison cannot be {what}; use it in where(c, a, b)", n)
        return e

    def constant(self, n: ast.Constant) -> Const:
        v = n.value
        if not isinstance(v, int | float) or isinstance(v, bool):
            raise self.fail(f"{type(v).__name__} literals are not allowed", n)
        if abs(v) > MAX_LITERAL or not math.isfinite(v):  # abs first: huge ints overflow floats
            raise self.fail(f"numeric literals must be finite with |c| <= {MAX_LITERAL:g}", n)
        return Const(float(v))

    def name(self, n: ast.Name) -> Expr:
        name = n.id
        if name in self.constants:
            return Const(self.constants[name])
        if name == "x":
            return Var("x0")
        m = INPUT_NAME.fullmatch(name)
        if m and int(m.group(1)) < MAX_INPUTS:
            return Var(name)
        if name in GRAD_NAMES:
            if self.grad:
                return Var(name)
            raise self.fail(f"`{name}` is only available in grad expressions", n)
        if name in FUNCTIONS:
            raise self.fail(f"function `{name}` must be called", n)
        known = ", ".join(["x", f"x0..x{MAX_INPUTS - 1}", *self.constants])
        extra = ", g, y" if self.grad else ""
        raise self.fail(f"unknown name `{name}` (known: {known}{extra})", n)

    def unary(self, n: ast.UnaryOp, depth: int) -> Expr:
        if not isinstance(n.op, ast.USub | ast.UAdd):
            raise self.fail(f"unary `{type(n.op).__name__}` is not allowed", n)
        e = self.number(n.operand, depth + 1, "negated")
        if isinstance(n.op, ast.UAdd):
            return e
        return self.fold("neg", (e,), n) if isinstance(e, Const) else Unary(e)

    def binary(self, n: ast.BinOp, depth: int) -> Expr:
        op = BINOPS.get(type(n.op))
        if op is None:
            raise self.fail(f"operator `{type(n.op).__name__}` is not allowed", n)
        if op == "pow":
            p = _literal(n.right)
            if p is None:
                raise self.fail("the exponent of ** must be a numeric literal", n)
            if abs(p) > MAX_EXPONENT:
                raise self.fail(f"exponent {p:g} is too large (|p| <= {MAX_EXPONENT})", n)
        left = self.number(n.left, depth + 1, "an operand")
        right = self.number(n.right, depth + 1, "an operand")
        if isinstance(left, Const) and isinstance(right, Const):
            return self.fold(op, (left, right), n)
        return Binary(op, left, right)

    def compare(self, n: ast.Compare, depth: int) -> Expr:
        if len(n.ops) != 1:
            raise self.fail("chained comparisons are not allowed", n)
        op = CMPOPS.get(type(n.ops[0]))
        if op is None:
            raise self.fail(f"comparison `{type(n.ops[0]).__name__}` is not allowed", n)
        left = self.number(n.left, depth + 1, "compared")
        right = self.number(n.comparators[0], depth + 1, "compared")
        if isinstance(left, Const) and isinstance(right, Const):
            raise self.fail("a comparison between two constants is not allowed", n)
        return Compare(op, left, right)

    def callee(self, n: ast.Call) -> str:
        """The called function's name; it must be a known function called by name."""
        if not isinstance(n.func, ast.Name):
            what = "attribute access" if isinstance(n.func, ast.Attribute) else "this call"
            raise self.fail(f"{what} is not allowed; call a function by name", n)
        fn = n.func.id
        if fn not in FUNCTIONS:
            raise self.fail(f"unknown function `{fn}` (known: {', '.join(sorted(FUNCTIONS))})", n)
        return fn

    def call(self, n: ast.Call, depth: int) -> Expr:
        fn = self.callee(n)
        if fn in REDUCTIONS:
            return self.reduce(fn, n, depth)
        if n.keywords:
            raise self.fail(f"`{fn}` takes no keyword arguments", n)
        want = 1 if fn in UNARY_FUNCS else 2 if fn in BINARY_FUNCS else 3
        if len(n.args) != want:
            raise self.fail(f"`{fn}` takes {want} argument(s), found {len(n.args)}", n)
        if fn == "where":
            return self.where_call(n, depth)
        args = tuple(self.number(a, depth + 1, f"an argument of {fn}") for a in n.args)
        if fn == "clip":
            self.clip_bounds(args[1], args[2], n)
        if all(isinstance(a, Const) for a in args):
            return self.fold(fn, args, n)
        return Call(fn, args)

    def clip_bounds(self, lo: Expr, hi: Expr, n: ast.Call) -> None:
        if not (isinstance(lo, Const) and isinstance(hi, Const)):
            raise self.fail("clip bounds must be constants", n)
        if lo.value > hi.value:
            raise self.fail("clip needs lo <= hi", n)

    def where_call(self, n: ast.Call, depth: int) -> Expr:
        cond = self.expr(n.args[0], depth + 1)
        if not isinstance(cond, Compare):
            raise self.fail("the first argument of where must be a comparison", n)
        a = self.number(n.args[1], depth + 1, "a branch of where")
        b = self.number(n.args[2], depth + 1, "a branch of where")
        return Call("where", (cond, a, b))

    def reduce(self, fn: str, n: ast.Call, depth: int) -> Expr:
        if len(n.args) != 1:
            raise self.fail(f"`{fn}` takes one positional argument: {fn}(e, axis=k)", n)
        kw: dict[str, ast.expr] = {}
        for k in n.keywords:
            if k.arg not in ("axis", "keepdims") or k.arg in kw:
                raise self.fail(f"`{fn}` accepts only the keywords axis= and keepdims=", n)
            kw[k.arg] = k.value
        if "axis" not in kw:
            raise self.fail(f"`{fn}` needs axis=k (a per-sample axis)", n)
        axis = _literal(kw["axis"])
        if axis is None or not axis.is_integer() or abs(axis) > MAX_AXIS:
            raise self.fail(f"axis must be an integer literal with |axis| <= {MAX_AXIS}", n)
        keep = kw.get("keepdims")
        if keep is not None and not (isinstance(keep, ast.Constant) and type(keep.value) is bool):
            raise self.fail("keepdims must be True or False", n)
        operand = self.number(n.args[0], depth + 1, f"reduced by {fn}")
        if isinstance(operand, Const):
            raise self.fail(f"`{fn}` of a constant is not allowed", n)
        keepdims = bool(keep.value) if isinstance(keep, ast.Constant) else False
        return Reduce(cast(ReduceFn, fn), operand, int(axis), keepdims)

    def fold(self, fn: str, args: tuple[Expr, ...], n: ast.AST) -> Const:
        values = [a.value for a in args if isinstance(a, Const)]
        try:
            v = FOLD[fn](*values)
        except (ArithmeticError, ValueError):
            v = math.nan
        if not isinstance(v, float | int) or not math.isfinite(v):
            raise self.fail("constant sub-expression has no finite real value", n)
        return Const(float(v))
