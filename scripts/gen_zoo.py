"""Writes data/zoo/*.yaml: explicit DAGs, so each zoo file is the whole truth.

The torchvision models follow torchvision.models exactly (resnet v1.5 bottlenecks,
MobileNetV2 inverted residuals, VGG16 config D with its 7x7 adaptive pool), so their
parameter counts equal the published figures. Run: python scripts/gen_zoo.py
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ZOO = Path(__file__).resolve().parent.parent / "data" / "zoo"


class Graph:
    def __init__(self) -> None:
        self.nodes: list[dict[str, Any]] = []

    def add(self, node_id: str, op: str, inputs: list[str] | str, **params: Any) -> str:
        ins = [inputs] if isinstance(inputs, str) else inputs
        node: dict[str, Any] = {"id": node_id, "op": op, "inputs": ins}
        if params:
            node["params"] = params
        self.nodes.append(node)
        return node_id

    def conv_bn(
        self,
        name: str,
        x: str,
        filters: int,
        kernel: int,
        stride: int = 1,
        groups: int = 1,
        act: str | None = "relu",
    ) -> str:
        x = self.add(
            f"{name}_conv",
            "conv2d",
            x,
            filters=filters,
            kernel=kernel,
            stride=stride,
            padding=(kernel - 1) // 2,
            groups=groups,
            bias=False,
        )
        x = self.add(f"{name}_bn", "batch_norm", x)
        return self.add(f"{name}_{act}", act, x) if act else x


def spec(
    name: str,
    description: str,
    inputs: list[dict[str, Any]],
    g: Graph,
    outputs: list[str],
    small: dict[str, list[int]],
    task: str = "classification",
    source: str | None = None,
) -> dict[str, Any]:
    desc = description + (f" Architecture source: {source}." if source else "")
    return {
        "name": name,
        "description": desc,
        "task": task,
        "inputs": inputs,
        "sizes": {"small": small},
        "nodes": g.nodes,
        "outputs": outputs,
    }


def image(c: int, hw: int) -> list[dict[str, Any]]:
    return [{"name": "image", "shape": [c, hw, hw], "dtype": "float32"}]


def resnet(name: str, blocks: list[int], bottleneck: bool) -> dict[str, Any]:
    g = Graph()
    x = g.conv_bn("stem", "image", 64, 7, stride=2)
    x = g.add("stem_pool", "max_pool2d", x, kernel=3, stride=2, padding=1)
    in_ch, expansion = 64, 4 if bottleneck else 1
    for stage, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512), strict=True), start=1):
        for b in range(n):
            stride = 2 if (b == 0 and stage > 1) else 1
            p, out_ch = f"l{stage}b{b}", width * expansion
            if bottleneck:
                y = g.conv_bn(f"{p}a", x, width, 1)
                y = g.conv_bn(f"{p}b", y, width, 3, stride=stride)
                y = g.conv_bn(f"{p}c", y, out_ch, 1, act=None)
            else:
                y = g.conv_bn(f"{p}a", x, width, 3, stride=stride)
                y = g.conv_bn(f"{p}b", y, width, 3, act=None)
            if stride != 1 or in_ch != out_ch:
                x = g.conv_bn(f"{p}down", x, out_ch, 1, stride=stride, act=None)
            x = g.add(f"{p}_relu", "relu", g.add(f"{p}_add", "add", [y, x]))
            in_ch = out_ch
    x = g.add("pool", "global_avg_pool", x)
    g.add("fc", "dense", x, units=1000)
    layers = sum(blocks) * (3 if bottleneck else 2) + 2
    return spec(
        name,
        f"ResNet-{layers} image classifier, 1000 classes.",
        image(3, 224),
        g,
        ["fc"],
        {"image": [3, 64, 64]},
        source=f"torchvision.models.{name}",
    )


def mobilenet_v2() -> dict[str, Any]:
    g = Graph()
    x = g.conv_bn("stem", "image", 32, 3, stride=2, act="relu6")
    in_ch = 32
    settings = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]
    i = 0
    for t, c, n, s in settings:
        for j in range(n):
            stride, hidden, p = (s if j == 0 else 1), in_ch * t, f"ir{i}"
            y = g.conv_bn(f"{p}_expand", x, hidden, 1, act="relu6") if t != 1 else x
            y = g.conv_bn(f"{p}_dw", y, hidden, 3, stride=stride, groups=hidden, act="relu6")
            y = g.conv_bn(f"{p}_project", y, c, 1, act=None)
            x = g.add(f"{p}_add", "add", [x, y]) if stride == 1 and in_ch == c else y
            in_ch, i = c, i + 1
    x = g.conv_bn("head", x, 1280, 1, act="relu6")
    x = g.add("pool", "global_avg_pool", x)
    x = g.add("drop", "dropout", x, rate=0.2)
    g.add("fc", "dense", x, units=1000)
    return spec(
        "mobilenet_v2",
        "MobileNetV2 (width 1.0) image classifier, 1000 classes.",
        image(3, 224),
        g,
        ["fc"],
        {"image": [3, 64, 64]},
        source="torchvision.models.mobilenet_v2",
    )


def vgg16() -> dict[str, Any]:
    g = Graph()
    x, block, idx = "image", 1, 1
    for v in [
        64,
        64,
        "M",
        128,
        128,
        "M",
        256,
        256,
        256,
        "M",
        512,
        512,
        512,
        "M",
        512,
        512,
        512,
        "M",
    ]:
        if v == "M":
            x = g.add(f"pool{block}", "max_pool2d", x, kernel=2, stride=2)
            block, idx = block + 1, 1
            continue
        x = g.add(f"conv{block}_{idx}", "conv2d", x, filters=v, kernel=3, padding=1)
        x = g.add(f"relu{block}_{idx}", "relu", x)
        idx += 1
    x = g.add("avgpool", "adaptive_avg_pool2d", x, output_size=[7, 7])
    x = g.add("flatten", "flatten", x)
    for k in (1, 2):
        x = g.add(f"fc{k}", "dense", x, units=4096)
        x = g.add(f"fc{k}_relu", "relu", x)
        x = g.add(f"fc{k}_drop", "dropout", x, rate=0.5)
    g.add("fc3", "dense", x, units=1000)
    return spec(
        "vgg16",
        "VGG-16 (config D, no batch norm) image classifier, 1000 classes.",
        image(3, 224),
        g,
        ["fc3"],
        {"image": [3, 32, 32]},
        source="torchvision.models.vgg16",
    )


def mlp() -> dict[str, Any]:
    g = Graph()
    x = "features"
    for k, units in enumerate((256, 128), start=1):
        x = g.add(f"relu{k}", "relu", g.add(f"fc{k}", "dense", x, units=units))
    g.add("out", "dense", x, units=10)
    return spec(
        "mlp",
        "Tabular MLP: 64 features (e.g. 8x8 digits), 256-128 hidden, 10 classes.",
        [{"name": "features", "shape": [64], "dtype": "float32"}],
        g,
        ["out"],
        {"features": [64]},
    )


def lenet5() -> dict[str, Any]:
    g = Graph()
    x = g.add("c1", "conv2d", "image", filters=6, kernel=5)
    x = g.add("s2", "avg_pool2d", g.add("c1_tanh", "tanh", x), kernel=2)
    x = g.add("c3", "conv2d", x, filters=16, kernel=5)
    x = g.add("s4", "avg_pool2d", g.add("c3_tanh", "tanh", x), kernel=2)
    x = g.add("flatten", "flatten", x)
    for name, units in (("f5", 120), ("f6", 84)):
        x = g.add(f"{name}_tanh", "tanh", g.add(name, "dense", x, units=units))
    g.add("out", "dense", x, units=10)
    return spec(
        "lenet5",
        "LeNet-5 (LeCun 1998): tanh, average pooling, 32x32 grey input.",
        image(1, 32),
        g,
        ["out"],
        {"image": [1, 32, 32]},
    )


def text_lstm() -> dict[str, Any]:
    g = Graph()
    x = g.add("embed", "embedding", "tokens", num_embeddings=20000, embedding_dim=128)
    x = g.add("lstm1", "lstm", x, hidden_size=128)
    x = g.add("lstm2", "lstm", x, hidden_size=128, return_sequences=False)
    g.add("out", "dense", x, units=2)
    return spec(
        "text_lstm",
        "Text classifier: 20k-token embedding, 2-layer LSTM (128), 2 classes.",
        [{"name": "tokens", "shape": [200], "dtype": "int64", "max_value": 20000}],
        g,
        ["out"],
        {"tokens": [32]},
    )


def gru_seq() -> dict[str, Any]:
    g = Graph()
    x = g.add("gru1", "gru", "series", hidden_size=64, bidirectional=True)
    x = g.add("gru2", "gru", x, hidden_size=64)
    g.add("out", "dense", x, units=8)
    return spec(
        "gru_seq",
        "Sequence-to-sequence regressor: bidirectional GRU (64) then GRU (64), "
        "8 targets per time step.",
        [{"name": "series", "shape": [100, 16], "dtype": "float32"}],
        g,
        ["out"],
        {"series": [16, 16]},
        task="regression",
    )


def bert_tiny() -> dict[str, Any]:
    g = Graph()
    x = g.add("tok_embed", "embedding", "tokens", num_embeddings=30522, embedding_dim=128)
    x = g.add("pos_embed", "position_embedding", x, max_len=512)
    x = g.add("embed_ln", "layer_norm", x, eps=1e-12)
    for i in range(2):
        a = g.add(f"l{i}_attn", "self_attention", x, num_heads=2)
        x = g.add(f"l{i}_ln1", "layer_norm", g.add(f"l{i}_res1", "add", [x, a]), eps=1e-12)
        h = g.add(f"l{i}_gelu", "gelu", g.add(f"l{i}_ffn1", "dense", x, units=512))
        h = g.add(f"l{i}_ffn2", "dense", h, units=128)
        x = g.add(f"l{i}_ln2", "layer_norm", g.add(f"l{i}_res2", "add", [x, h]), eps=1e-12)
    x = g.add("pool", "mean", x, axis=0)
    g.add("out", "dense", x, units=2)
    return spec(
        "bert_tiny",
        "BERT-tiny-like encoder: 2 layers, hidden 128, 2 heads, FFN 512, "
        "30522-token vocabulary, sequence 128, mean-pooled 2-class head.",
        [{"name": "tokens", "shape": [128], "dtype": "int64", "max_value": 30522}],
        g,
        ["out"],
        {"tokens": [32]},
    )


def audio_cnn() -> dict[str, Any]:
    g = Graph()
    x = "waveform"
    for i, (filters, kernel, stride) in enumerate(
        ((32, 80, 4), (32, 3, 2), (64, 3, 2), (64, 3, 2), (128, 3, 2))
    ):
        x = g.add(
            f"conv{i}",
            "conv1d",
            x,
            filters=filters,
            kernel=kernel,
            stride=stride,
            padding="same",
            bias=False,
        )
        x = g.add(f"relu{i}", "relu", g.add(f"bn{i}", "batch_norm", x))
    x = g.add("pool", "global_avg_pool", x)
    g.add("out", "dense", x, units=35)
    return spec(
        "audio_cnn",
        "Raw-waveform keyword classifier (M5-like, strided conv1d), 1 s at 16 kHz, 35 classes.",
        [{"name": "waveform", "shape": [1, 16000], "dtype": "float32"}],
        g,
        ["out"],
        {"waveform": [1, 2000]},
    )


def conv_autoencoder() -> dict[str, Any]:
    g = Graph()
    x = "image"
    for i, f in enumerate((16, 32)):
        x = g.add(
            f"enc{i}_relu",
            "relu",
            g.add(f"enc{i}", "conv2d", x, filters=f, kernel=3, stride=2, padding="same"),
        )
    x = g.add("code_relu", "relu", g.add("code", "conv2d", x, filters=8, kernel=3, padding="same"))
    for i, f in enumerate((32, 16)):
        x = g.add(f"up{i}", "upsample2d", x, scale=2)
        x = g.add(
            f"dec{i}_relu",
            "relu",
            g.add(f"dec{i}", "conv2d", x, filters=f, kernel=3, padding="same"),
        )
    x = g.add("recon", "conv2d", x, filters=1, kernel=3, padding="same")
    g.add("out", "sigmoid", x)
    return spec(
        "conv_autoencoder",
        "Convolutional autoencoder for 28x28 grey images "
        "(stride-2 encoder, nearest-upsampling decoder).",
        image(1, 28),
        g,
        ["out"],
        {"image": [1, 16, 16]},
        task="reconstruction",
    )


MODELS = [
    mlp(),
    lenet5(),
    resnet("resnet18", [2, 2, 2, 2], False),
    resnet("resnet50", [3, 4, 6, 3], True),
    mobilenet_v2(),
    vgg16(),
    text_lstm(),
    gru_seq(),
    bert_tiny(),
    audio_cnn(),
    conv_autoencoder(),
]


class _Dumper(yaml.SafeDumper):
    pass


def _flow_lists(dumper: yaml.SafeDumper, data: list[Any]) -> yaml.Node:
    flow = all(not isinstance(v, dict | list) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _flow_lists)


def main() -> None:
    ZOO.mkdir(parents=True, exist_ok=True)
    for m in MODELS:
        text = yaml.dump(m, Dumper=_Dumper, sort_keys=False, width=100)
        (ZOO / f"{m['name']}.yaml").write_text(
            "# Generated by scripts/gen_zoo.py; edit that script, not this file.\n" + text
        )
        print(f"wrote {ZOO / (m['name'] + '.yaml')}")


if __name__ == "__main__":
    main()
