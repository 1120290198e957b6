"""Sequence ops on [T, F] tensors: embeddings, class token, LSTM/GRU, multi-head self-attention."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from probes.errors import ShapeMismatchError
from probes.spec.ops_base import Op, Params, TensorInfo, WeightDef, expect_rank


class EmbeddingParams(Params):
    num_embeddings: int = Field(gt=0)
    embedding_dim: int = Field(gt=0)


class Embedding(Op):
    """int64 token ids [T] -> [T, E]."""

    name = "embedding"
    params_model = EmbeddingParams
    float_only = False

    def infer(self, node: str, p: EmbeddingParams, ins: list[TensorInfo]) -> TensorInfo:
        if ins[0].dtype != "int64":
            raise ShapeMismatchError(
                f"embedding expected an int64 input, found {ins[0].dtype}", node=node
            )
        return TensorInfo((*ins[0].shape, p.embedding_dim))

    def weights(self, p: EmbeddingParams, ins: list[TensorInfo]) -> dict[str, WeightDef]:
        return {"weight": WeightDef((p.num_embeddings, p.embedding_dim), "normal")}


class PositionEmbeddingParams(Params):
    max_len: int = Field(gt=0)


class PositionEmbedding(Op):
    """Adds a learned position table: y[t] = x[t] + P[t] for [T, E] inputs."""

    name = "position_embedding"
    params_model = PositionEmbeddingParams

    def infer(self, node: str, p: PositionEmbeddingParams, ins: list[TensorInfo]) -> TensorInfo:
        expect_rank(node, "input [T, E]", ins[0], (2,))
        if ins[0].shape[0] > p.max_len:
            raise ShapeMismatchError(
                f"sequence length {ins[0].shape[0]} exceeds max_len {p.max_len}", node=node
            )
        return ins[0]

    def weights(self, p: PositionEmbeddingParams, ins: list[TensorInfo]) -> dict[str, WeightDef]:
        return {"weight": WeightDef((p.max_len, ins[0].shape[1]), "normal")}


class ClassTokenParams(Params):
    at: Literal["start", "end"] = "start"


class ClassToken(Op):
    """Adds one learned token [E] to the sequence: [T, E] -> [T+1, E], as row 0
    (``at: start``, ViT's class token) or as the last row (``at: end``)."""

    name = "class_token"
    params_model = ClassTokenParams

    def infer(self, node: str, p: ClassTokenParams, ins: list[TensorInfo]) -> TensorInfo:
        expect_rank(node, "input [T, E]", ins[0], (2,))
        return TensorInfo((ins[0].shape[0] + 1, ins[0].shape[1]))

    def weights(self, p: ClassTokenParams, ins: list[TensorInfo]) -> dict[str, WeightDef]:
        return {"weight": WeightDef((ins[0].shape[1],), "normal")}


class RecurrentParams(Params):
    hidden_size: int = Field(gt=0)
    bidirectional: bool = False
    return_sequences: bool = True


class _Recurrent(Op):
    """[T, F] -> [T, D*H] (sequences) or [D*H] (last state); D=2 when bidirectional."""

    params_model = RecurrentParams
    gates: int

    def directions(self, p: RecurrentParams) -> list[str]:
        return ["", "_reverse"] if p.bidirectional else [""]

    def infer(self, node: str, p: RecurrentParams, ins: list[TensorInfo]) -> TensorInfo:
        expect_rank(node, "input [T, F]", ins[0], (2,))
        width = p.hidden_size * len(self.directions(p))
        return TensorInfo((ins[0].shape[0], width) if p.return_sequences else (width,))

    def weights(self, p: RecurrentParams, ins: list[TensorInfo]) -> dict[str, WeightDef]:
        g, h, f = self.gates * p.hidden_size, p.hidden_size, ins[0].shape[1]
        out: dict[str, WeightDef] = {}
        for d in self.directions(p):
            out[f"w_ih{d}"] = WeightDef((g, f), "uniform", h)
            out[f"w_hh{d}"] = WeightDef((g, h), "uniform", h)
            out.update(self.biases(d, g, h))
        return out

    def biases(self, d: str, g: int, h: int) -> dict[str, WeightDef]:
        raise NotImplementedError

    def macs(self, p: RecurrentParams, ins: list[TensorInfo], out: TensorInfo) -> int:
        t, f, h = ins[0].shape[0], ins[0].shape[1], p.hidden_size
        return len(self.directions(p)) * t * self.gates * h * (f + h)


class LSTM(_Recurrent):
    """Gate order i, f, g, o. One bias per gate: PyTorch's b_ih + b_hh are redundant."""

    name = "lstm"
    gates = 4

    def biases(self, d: str, g: int, h: int) -> dict[str, WeightDef]:
        return {f"b{d}": WeightDef((g,), "uniform", h)}


class GRU(_Recurrent):
    """Gate order r, z, n (PyTorch); the new-gate recurrent bias sits inside r * (...)."""

    name = "gru"
    gates = 3

    def biases(self, d: str, g: int, h: int) -> dict[str, WeightDef]:
        return {
            f"b_ih{d}": WeightDef((g,), "uniform", h),
            f"b_hh{d}": WeightDef((g,), "uniform", h),
        }


class AttentionParams(Params):
    num_heads: int = Field(gt=0)
    causal: bool = False


class SelfAttention(Op):
    """Multi-head self-attention on [T, E] with Q/K/V/output projections (E x E each)."""

    name = "self_attention"
    params_model = AttentionParams

    def infer(self, node: str, p: AttentionParams, ins: list[TensorInfo]) -> TensorInfo:
        expect_rank(node, "input [T, E]", ins[0], (2,))
        if ins[0].shape[1] % p.num_heads:
            raise ShapeMismatchError(
                f"embedding size {ins[0].shape[1]} is not divisible by num_heads {p.num_heads}",
                node=node,
            )
        return ins[0]

    def weights(self, p: AttentionParams, ins: list[TensorInfo]) -> dict[str, WeightDef]:
        e = ins[0].shape[1]
        out: dict[str, WeightDef] = {}
        for name in "qkvo":
            out[f"w_{name}"] = WeightDef((e, e), "he", e)
            out[f"b_{name}"] = WeightDef((e,), "uniform", e)
        return out

    def macs(self, p: AttentionParams, ins: list[TensorInfo], out: TensorInfo) -> int:
        t, e = ins[0].shape
        return 4 * t * e * e + 2 * t * t * e


SEQ_OPS: list[Op] = [
    Embedding(),
    PositionEmbedding(),
    ClassToken(),
    LSTM(),
    GRU(),
    SelfAttention(),
]
