"""``fwadvisor ask`` (the questionnaire in the terminal) and ``fwadvisor recommend``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from probes.config import Settings
from probes.errors import AdvisorError
from probes.spec import ModelSpec
from recommender.questionnaire import Question, load_answers, load_questionnaire, to_profile
from recommender.recommend import NAMES, Recommendation, recommend
from service.cli.options import MODEL_HELP, add_process_option, positive_int
from service.cli.progress import progress
from service.cli.render import table
from service.schemas import AskResult


def _keys(q: Question) -> list[str]:
    """What to type for each option: a scale's own values (its help says "0 none, ...
    3 expert"), else the options numbered from 1."""
    if q.type == "scale":
        return [str(o.value) for o in q.options]
    return [str(i) for i in range(1, len(q.options) + 1)]


def _parse(q: Question, text: str) -> Any:
    """The answer typed as ``text``; AdvisorError (with what to type) if it is not one."""
    if q.type == "number":
        try:
            value: Any = float(text) if "." in text else int(text)
        except ValueError:
            raise AdvisorError(f"{text!r} is not a number") from None
        return q.check(value)
    keys = _keys(q)
    picks = [t.strip() for t in text.split(",") if t.strip()]
    if not picks or (q.type != "multi" and len(picks) > 1):
        raise AdvisorError(f"type one of {', '.join(keys)}")
    bad = [p for p in picks if p not in keys]
    if bad:
        raise AdvisorError(f"{', '.join(bad)} is not an option; type one of {', '.join(keys)}")
    values = [q.options[keys.index(p)].value for p in picks]
    return q.check(values if q.type == "multi" else values[0])


def _prompt(q: Question) -> Any:
    print(f"\n{q.text}\n  {q.help}", file=sys.stderr)
    for key, o in zip(_keys(q), q.options, strict=True):
        print(f"  {key}. {o.label}", file=sys.stderr)
    hint = "numbers separated by commas" if q.type == "multi" else "a number"
    while True:
        print(f"[{hint}; Enter for {q.default}] > ", end="", file=sys.stderr, flush=True)
        line = sys.stdin.readline()
        if not line:
            raise AdvisorError("no more input (stdin closed); pass --answers FILE instead")
        text = line.strip()
        if not text:
            return q.default
        try:
            return _parse(q, text)
        except AdvisorError as e:
            print(f"  {e.message}; try again", file=sys.stderr)


def cmd_ask(args: argparse.Namespace, settings: Settings) -> int:
    q = load_questionnaire()
    if args.answers:
        answers = load_answers(Path(args.answers))
    else:
        answers = {question.id: _prompt(question) for question in q.questions}
    resolved = q.resolve(answers)
    profile = to_profile(resolved, q)
    if args.out:
        Path(args.out).write_text(yaml.safe_dump(resolved, sort_keys=False))
    result = AskResult(answers=resolved, profile=profile)
    if args.json:
        print(result.model_dump_json(indent=2))
        return 0
    rows = [(c, f"{w:.2f}") for c, w in profile.weights.items()]
    print(table(["criterion", "weight"], rows, align_right=(1,)))
    print("constraints: " + ("; ".join(c.text for c in profile.constraints) or "none"))
    print("because: " + ("; ".join(profile.reasons) or "defaults"))
    if args.out:
        print(f"answers saved to {args.out}")
    return 0


def render(r: Recommendation) -> str:
    fws = list(r.utilities)
    rows = [
        (
            c.criterion,
            f"{c.weight:.2f}",
            *(f"{c.scores[fw]:.2f}" for fw in fws),
            *(f"{c.contributions[fw]:.3f}" for fw in fws),
        )
        for c in r.criteria
    ]
    rows.append(("utility", "", *("" for _ in fws), *(f"{r.utilities[fw]:.3f}" for fw in fws)))
    heads = ["criterion", "weight", *(f"{NAMES[f]} score" for f in fws)]
    heads += [f"{NAMES[f]} contrib" for f in fws]
    lines = [f"{r.model} ({r.mode} mode): {r.summary}", ""]
    if r.assumed:
        lines.append(
            "assumed configurations: "
            + "; ".join(f"{NAMES[fw]} {cfg}" for fw, cfg in r.assumed.items())
        )
    if r.latency_ratio:
        lines.append(f"torch/TF latency: {r.latency_ratio.text()}")
    elif not r.speed_compared:
        lines.append("torch/TF latency: not compared, the machine was busy (see caveats)")
    lines += [
        table(heads, rows, align_right=tuple(range(1, len(heads)))),
        "",
        "evidence per criterion:",
        *(f"  {c.criterion}: {c.detail}" for c in r.criteria),
    ]
    if r.vetoes:
        lines += [
            "vetoes:",
            *(f"  {NAMES[v.framework]}: {v.constraint}: {v.reason}" for v in r.vetoes),
        ]
    if r.sensitivity:
        lines += ["what would change the answer:", *(f"  {f.text}" for f in r.sensitivity)]
    lines += ["caveats:", *(f"  {c}" for c in r.caveats)]
    lines += ["evidence:", *(f"  {link}" for link in r.evidence.links)]
    return "\n".join(lines)


def cmd_recommend(args: argparse.Namespace, settings: Settings, spec: ModelSpec) -> int:
    answers = load_answers(Path(args.answers)) if args.answers else {}
    load_questionnaire().resolve(answers)  # bad answers fail before anything runs

    with progress(f"recommend {spec.name}", enabled=not args.json) as say:
        rec = recommend(
            spec, answers, args.mode, settings=settings, trials=args.trials, progress=say
        )
    print(rec.model_dump_json(indent=2) if args.json else render(rec))
    return 0


def add_parsers(sub: Any) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    ask: argparse.ArgumentParser = sub.add_parser(
        "ask", help="the requirements questionnaire: answers -> weights and constraints"
    )
    ask.add_argument("--answers", default=None, help="YAML/JSON answers (non-interactive)")
    ask.add_argument("--out", default=None, help="save the resolved answers as YAML")
    rec: argparse.ArgumentParser = sub.add_parser(
        "recommend", help="PyTorch or TensorFlow for this model and these requirements"
    )
    rec.add_argument("model", metavar="NAME|FILE", help=MODEL_HELP)
    rec.add_argument(
        "--answers",
        default=None,
        help="YAML/JSON answers (data/examples/*.yaml, or saved by fwadvisor ask --out); "
        "optional: without it the questions are asked here",
    )
    rec.add_argument(
        "--mode",
        choices=["measure", "cached", "predict"],
        default="predict",
        help="predict: instant estimate; measure: tune and time both here (minutes); "
        "cached: stored measurements only",
    )
    rec.add_argument(
        "--trials", type=positive_int, default=6, help="measure: tuning trials per framework"
    )
    add_process_option(rec)
    return ask, rec
