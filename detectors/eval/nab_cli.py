"""Command-line front end of the NAB scorer (:mod:`detectors.eval.nab`), for ``lifewatch eval``.

``score_cli(nab_dir, results_dir, as_json)`` loads the corpus, scores a results
folder with one optimised threshold per profile and prints the normalised
Standard, Reward-low-FP and Reward-low-FN scores. Also runnable on its own::

    python -m detectors.eval.nab_cli RESULTS_DIR [--nab-dir DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from detectors.eval import nab

LABELS = {"standard": "Standard", "reward_low_FP_rate": "Reward low FP", "reward_low_FN_rate": "Reward low FN"}
NAB_DIR_ENV = "LIFEWATCH_NAB_DIR"


def default_nab_dir() -> Path:
    """``$LIFEWATCH_NAB_DIR``, else ``shared/datasets/nab`` next to the repository."""
    env = os.environ.get(NAB_DIR_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "nab"


def score_cli(nab_dir: str | os.PathLike | None, results_dir: str | os.PathLike, as_json: bool = False,
              detector: str | None = None) -> int:
    """Score ``results_dir`` against the NAB corpus in ``nab_dir`` and print the scores.

    With ``as_json`` stdout is one JSON object: ``{"standard": x,
    "reward_low_FP_rate": y, "reward_low_FN_rate": z, "profiles": {name:
    {threshold, raw, null, perfect, tp, tn, fp, fn, total}}, "results_dir",
    "nab_dir", "files", "seconds"}``. Returns 0, or 2 (message on stderr)
    if the corpus or the results cannot be read.
    """
    nab_path = Path(nab_dir) if nab_dir is not None else default_nab_dir()
    t0 = time.perf_counter()
    try:
        corpus = nab.load_corpus(nab_path)
        results = nab.load_results(results_dir, corpus, detector=detector)
        scores = nab.score_corpus(corpus, results, nab.load_profiles(nab_path))
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"lifewatch eval: {exc}", file=sys.stderr)
        return 2
    seconds = time.perf_counter() - t0
    if as_json:
        doc: dict = {name: r["score"] for name, r in scores.items()}
        doc["profiles"] = {name: {k: v for k, v in r.items() if k != "score"} for name, r in scores.items()}
        doc.update(results_dir=str(results_dir), nab_dir=str(nab_path), files=len(corpus),
                   seconds=round(seconds, 3))
        print(json.dumps(doc))
        return 0
    print(f"NAB scores of {results_dir} ({len(corpus)} files, {corpus.n_rows} rows, {seconds:.2f} s)")
    print(f"{'profile':<16} {'score':>7} {'threshold':>12} {'raw':>10} {'null':>8} {'perfect':>8} {'TP':>6} {'FP':>6}")
    for name, r in scores.items():
        print(f"{LABELS.get(name, name):<16} {r['score']:>7.2f} {r['threshold']:>12.6g} {r['raw']:>10.3f} "
              f"{r['null']:>8.1f} {r['perfect']:>8.1f} {r['tp']:>6} {r['fp']:>6}")
    return 0


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of the scoring command (for ``lifewatch eval``)."""
    p.add_argument("results_dir", help="folder of NAB results: <category>/[<detector>_]<file>.csv")
    p.add_argument("--nab-dir", help=f"NAB corpus (default ${NAB_DIR_ENV} or ../shared/datasets/nab)")
    p.add_argument("--detector", help="results file prefix, if the folder holds several detectors")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")


def cli(args: argparse.Namespace, settings: object = None) -> int:
    """``(args, settings) -> exit code`` handler in the style of :mod:`lifewatch.cli`."""
    return score_cli(args.nab_dir, args.results_dir, args.json, detector=getattr(args, "detector", None))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m detectors.eval.nab_cli", description="Score NAB results.")
    add_arguments(p)
    return cli(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
