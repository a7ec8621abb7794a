"""Run Lifewatch's general-purpose detector over the NAB corpus and score it (``lifewatch eval nab``).

For every data file of the corpus a fresh scorer (default
:class:`~detectors.scorers.nab_best.SurpriseEnsemble`, registry name
``surprise_ensemble``) processes the file's rows in order as stream slot 0,
in big batches, through the ordinary scorer contract: one parameter set for
all files, learning only from rows already seen (no file length, no min/max
of the whole file).  Its scores in [0, 1] are written as NAB results files
(:func:`detectors.eval.nab.write_results`, NAB's layout
``<out>/<detector>/<category>/<detector>_<file>.csv``) and scored with
:func:`detectors.eval.nab.score_corpus` (one optimised threshold per profile,
as NAB does).

Also runnable on its own (for ``make eval`` before the CLI wiring)::

    python -m detectors.eval.nab_run --out DIR [--nab DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from detectors.base import create
from detectors.eval import nab
from detectors.eval.nab_cli import LABELS, NAB_DIR_ENV, default_nab_dir

DEFAULT_SCORER = "surprise_ensemble"
BATCH = 100_000


def score_file(values: np.ndarray, timestamps: np.ndarray, scorer: str = DEFAULT_SCORER,
               params: Mapping[str, Any] | None = None, batch: int = BATCH) -> np.ndarray:
    """Anomaly scores of one series: a fresh scorer, slot 0, rows in order in batches of ``batch``."""
    x = np.asarray(values, dtype=np.float64)
    t = np.asarray(timestamps, dtype="datetime64[ns]").view(np.int64)
    sc = create(scorer, **dict(params or {}))
    slots = np.zeros(len(x), dtype=np.int64)
    parts = [sc.process(slots[a:a + batch], t[a:a + batch], x[a:a + batch]) for a in range(0, len(x), batch)]
    out = np.concatenate(parts) if parts else np.zeros(0)
    return np.clip(out, 0.0, 1.0)


def run_nab(nab_dir: str | os.PathLike, out_dir: str | os.PathLike, detector_name: str = "lifewatch", *,
            scorer: str = DEFAULT_SCORER, params: Mapping[str, Any] | None = None,
            files: Sequence[str] | None = None, batch: int = BATCH) -> dict[str, Any]:
    """Detect, write and score the NAB corpus (or the ``files`` named, e.g. ``"realTraffic/speed_7578.csv"``).

    Returns ``{"standard", "reward_low_FP_rate", "reward_low_FN_rate"}`` (the
    normalised scores) plus ``"profiles"`` (threshold, raw, null, perfect, TP/FP
    counts per profile), ``"detector"``, ``"scorer"``, ``"params"``,
    ``"files"``, ``"rows"``, ``"results_dir"`` and the timings
    ``"detect_seconds"`` / ``"seconds"``.  With ``files`` the scores are
    normalised over those files' windows only.
    """
    t_start = time.perf_counter()
    corpus = nab.load_corpus(nab_dir)
    if files is not None:
        unknown = [f for f in files if f not in corpus.files]
        if unknown:
            raise KeyError(f"not NAB corpus files: {unknown}")
        corpus = nab.Corpus({f: corpus.files[f] for f in files}, corpus.root)
    used = dict(create(scorer, **dict(params or {})).p)
    t_detect = time.perf_counter()
    scores = {rel: score_file(f.values, f.timestamps, scorer, params, batch) for rel, f in corpus.files.items()}
    detect_seconds = time.perf_counter() - t_detect
    results_dir = Path(out_dir) / detector_name
    nab.write_results(results_dir, corpus, scores, detector=detector_name)
    res = nab.score_corpus(corpus, scores, nab.load_profiles(nab_dir))
    doc: dict[str, Any] = {name: r["score"] for name, r in res.items()}
    doc["profiles"] = {name: {k: v for k, v in r.items() if k != "score"} for name, r in res.items()}
    doc.update(detector=detector_name, scorer=scorer, params=used, files=len(corpus), rows=corpus.n_rows,
               results_dir=str(results_dir), detect_seconds=round(detect_seconds, 3),
               seconds=round(time.perf_counter() - t_start, 3))
    return doc


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Arguments of ``lifewatch eval nab``: ``--nab``, ``--out``, ``--json``."""
    p.add_argument("--nab", help=f"NAB corpus folder (default ${NAB_DIR_ENV} or ../shared/datasets/nab)")
    p.add_argument("--out", required=True, help="where to write the results (<out>/lifewatch/<category>/...)")
    p.add_argument("--json", action="store_true", help="print only JSON on stdout")


def cli(args: argparse.Namespace, settings: object = None) -> int:
    """``(args, settings) -> exit code`` handler: ``args.nab`` (None = default), ``args.out``, ``args.json``."""
    nab_dir = Path(args.nab) if getattr(args, "nab", None) else default_nab_dir()
    try:
        doc = run_nab(nab_dir, args.out)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"lifewatch eval nab: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(doc))
        return 0
    print(f"NAB: {doc['scorer']} over {doc['files']} files, {doc['rows']} rows "
          f"({doc['detect_seconds']:.1f} s detection, {doc['seconds']:.1f} s in all); results in {doc['results_dir']}")
    for name in nab.PROFILE_NAMES:
        if name in doc:
            r = doc["profiles"][name]
            print(f"{LABELS.get(name, name):<16} {doc[name]:6.2f}   threshold {r['threshold']:.4f}  TP {r['tp']}  FP {r['fp']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m detectors.eval.nab_run", description=__doc__.split("\n")[0])
    add_arguments(p)
    return cli(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
