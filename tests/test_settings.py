"""Settings: the validity check rejects impossible combinations and says why."""

from __future__ import annotations

import pytest

from probes.errors import AdvisorError
from probes.settings import TFSettings, TorchSettings, invalid_reasons, settings_label
from service.cli.probe import parse_settings


def reasons(s: TorchSettings | TFSettings, **kw: object) -> list[str]:
    args = {"workload": "infer", "has_conv2d": True, "device": "cpu", "cores": 2, **kw}
    return invalid_reasons(s, **args)  # type: ignore[arg-type]


def test_defaults_valid_everywhere() -> None:
    for s in (TorchSettings(), TFSettings()):
        for w in ("infer", "train", "cold"):
            assert reasons(s, workload=w) == []


@pytest.mark.parametrize(
    ("settings", "kw", "fragment"),
    [
        (TorchSettings(intra_threads=8), {}, "exceeds the 2 cores"),
        (TFSettings(inter_threads=3), {}, "inter_threads=3 exceeds"),
        (TorchSettings(compile_mode="max-autotune-no-cudagraphs"), {}, "needs mode=compile"),
        (TorchSettings(channels_last=True), {"has_conv2d": False}, "has none"),
        (TorchSettings(mode="compile", compile_mode="reduce-overhead"), {}, "needs device=cuda"),
        (TorchSettings(inference_mode=False), {"workload": "train"}, "only applies to"),
        (TFSettings(onednn=False), {"device": "cuda"}, "only affects CPU"),
    ],
)
def test_invalid_combinations(
    settings: TorchSettings | TFSettings, kw: dict[str, object], fragment: str
) -> None:
    why = reasons(settings, **kw)
    assert why and any(fragment in w for w in why), why


def test_parse_settings_scopes_and_aliases() -> None:
    s = parse_settings(
        [
            "threads=1",
            "precision=bf16",
            "torch.mode=compile",
            "tf.mode=xla",
            "tensorflow.onednn=off",
        ]
    )
    assert s["torch"] == TorchSettings(intra_threads=1, precision="bf16", mode="compile")
    assert s["tensorflow"] == TFSettings(
        intra_threads=1, precision="bf16", mode="xla", onednn=False
    )
    assert settings_label(s["tensorflow"]) == "xla t1 bf16 no-onednn"


@pytest.mark.parametrize(
    ("pair", "fragment"),
    [
        ("bogus=1", "unknown setting 'bogus'"),
        ("torch.mode=jit", "bad torch setting 'mode'"),
        ("threads", "expects key=value"),
        ("tf.channels_last=1", "unknown setting"),
    ],
)
def test_parse_settings_errors(pair: str, fragment: str) -> None:
    with pytest.raises(AdvisorError, match=fragment):
        parse_settings([pair])
