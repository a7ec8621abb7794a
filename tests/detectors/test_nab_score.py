"""The NAB scorer (detectors.eval.nab): reproduction of NAB's published scores, and unit tests on tiny inputs.

The corpus and the published results are read from ``../shared/datasets/nab``
next to the repository (override: ``LIFEWATCH_NAB_DIR``); without them the
reproduction tests fail rather than skip.
"""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detectors.eval import nab
from detectors.eval.nab_cli import score_cli

NAB_DIR = Path(os.environ.get("LIFEWATCH_NAB_DIR")
               or Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "nab")

# NAB's scoreboard / results/final_results.json (standard, reward_low_FP_rate, reward_low_FN_rate)
PUBLISHED = {
    "numenta": {"standard": 70.1, "reward_low_FP_rate": 63.1, "reward_low_FN_rate": 74.3},
    "windowedGaussian": {"standard": 39.6, "reward_low_FP_rate": 20.9, "reward_low_FN_rate": 47.4},
}
TOLERANCE = 0.2
STANDARD = nab.NAB_PROFILES["standard"]
LOW_FN = nab.NAB_PROFILES["reward_low_FN_rate"]


# --------------------------------------------------------------------------- the real corpus


@pytest.fixture(scope="module")
def nab_dir() -> Path:
    needed = [NAB_DIR / nab.WINDOWS_FILE, NAB_DIR / "data"] + [NAB_DIR / "results" / d for d in PUBLISHED]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        pytest.fail(f"NAB data not found ({', '.join(missing)}). Put the NAB corpus and the published results "
                    f"at {NAB_DIR} or point LIFEWATCH_NAB_DIR at them.", pytrace=False)
    return NAB_DIR


@pytest.fixture(scope="module")
def corpus(nab_dir: Path) -> nab.Corpus:
    return nab.load_corpus(nab_dir)


@pytest.fixture(scope="module")
def scored(nab_dir: Path, corpus: nab.Corpus) -> dict[str, tuple[dict, float]]:
    out = {}
    for detector in PUBLISHED:
        t0 = time.perf_counter()
        results = nab.load_results(nab_dir / "results" / detector, corpus)
        scores = nab.score_corpus(corpus, results, nab.load_profiles(nab_dir))
        out[detector] = (scores, time.perf_counter() - t0)
    return out


def test_corpus_shape(corpus: nab.Corpus) -> None:
    assert len(corpus) == 58
    assert corpus.n_windows == 116
    assert corpus.n_rows == 365558


@pytest.mark.parametrize("detector,profile", [(d, p) for d in PUBLISHED for p in nab.PROFILE_NAMES])
def test_reproduces_published_scores(scored: dict, detector: str, profile: str) -> None:
    result = scored[detector][0][profile]
    assert result["score"] == pytest.approx(PUBLISHED[detector][profile], abs=TOLERANCE), result
    assert result["perfect"] == 116.0
    assert result["null"] == {"reward_low_FN_rate": -232.0}.get(profile, -116.0)


def test_scoring_a_results_folder_is_fast(scored: dict) -> None:
    for detector, (_, seconds) in scored.items():
        assert seconds < 20.0, f"scoring {detector} took {seconds:.1f} s"


@pytest.mark.parametrize("detector", list(PUBLISHED))
def test_raw_totals_equal_nab_at_nab_thresholds(nab_dir: Path, corpus: nab.Corpus, detector: str) -> None:
    """At the thresholds NAB used, the raw totals and counts are exactly NAB's ``Totals`` rows."""
    published = {p: pd.read_csv(nab_dir / "results" / detector / f"{detector}_{p}_scores.csv")
                 for p in nab.PROFILE_NAMES}
    thresholds = {p: float(df["Threshold"].iloc[0]) for p, df in published.items()}
    results = nab.load_results(nab_dir / "results" / detector, corpus)
    scores = nab.score_corpus(corpus, results, thresholds=thresholds)
    for p, df in published.items():
        totals = df[df["Detector"] == "Totals"].iloc[0]
        assert scores[p]["raw"] == pytest.approx(totals["Score"], abs=1e-8)
        assert [scores[p][k] for k in ("tp", "tn", "fp", "fn")] == [int(totals[k]) for k in ("TP", "TN", "FP", "FN")]
        # the optimised threshold is never worse than NAB's
        assert scores[p]["sweep_raw"] >= totals["Score"] - 1e-8


def test_score_cli_json(nab_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert score_cli(nab_dir, nab_dir / "results" / "windowedGaussian", True) == 0
    doc = json.loads(capsys.readouterr().out)
    for profile, expected in PUBLISHED["windowedGaussian"].items():
        assert doc[profile] == pytest.approx(expected, abs=TOLERANCE)


def test_score_cli_text_and_errors(nab_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert score_cli(nab_dir, nab_dir / "results" / "numenta", False) == 0
    out = capsys.readouterr().out
    assert "Standard" in out and "70.10" in out and "74.32" in out
    assert score_cli(nab_dir, tmp_path / "nothing", True) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "not found" in captured.err


def test_write_results_round_trip(corpus: nab.Corpus, tmp_path: Path) -> None:
    relpath = "realKnownCause/nyc_taxi.csv"
    rng = np.random.default_rng(0)
    scores = {relpath: rng.random(len(corpus.files[relpath]))}
    [path] = nab.write_results(tmp_path / "mydet", corpus, scores, detector="mydet")
    assert path == tmp_path / "mydet" / "realKnownCause" / "mydet_nyc_taxi.csv"
    df = pd.read_csv(path)
    assert list(df.columns) == ["timestamp", "value", "anomaly_score", "label"]
    assert df["anomaly_score"].to_numpy().tolist() == scores[relpath].tolist()
    assert df["label"].sum() == sum(sp.exit - sp.entry + 1 for sp in corpus.files[relpath].spans)
    one = nab.Corpus({relpath: corpus.files[relpath]})
    back = nab.load_results(tmp_path / "mydet", one)
    assert back[relpath].tolist() == scores[relpath].tolist()


# --------------------------------------------------------------------------- tiny hand-made inputs


def minutes(n: int, start: str = "2024-01-01 00:00:00") -> list[str]:
    return list(pd.date_range(start, periods=n, freq="min").strftime("%Y-%m-%d %H:%M:%S"))


def tiny_file(n: int = 100, windows: tuple[tuple[int, int], ...] = ((40, 49),), name: str = "cat/tiny.csv"
              ) -> nab.DataFile:
    ts = minutes(n)
    return nab.DataFile.from_arrays(name, ts, [(ts[a], ts[b]) for a, b in windows])


def detections(n: int, rows: list[int]) -> np.ndarray:
    a = np.zeros(n)
    a[rows] = 1.0
    return a


def test_scaled_sigmoid() -> None:
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(-0.5) == pytest.approx(0.84828, abs=1e-5)
    assert nab.scaled_sigmoid(0.0) == 0.0
    assert nab.scaled_sigmoid(1.0) == pytest.approx(-0.98661, abs=1e-5)
    assert nab.scaled_sigmoid(3.0) == pytest.approx(2 / (1 + math.exp(15)) - 1)
    assert nab.scaled_sigmoid(3.01) == -1.0
    arr = nab.scaled_sigmoid(np.array([-1.0, 0.0, 5.0, 1000.0]))
    assert arr.shape == (4,) and arr[1] == 0.0 and arr[2] == -1.0 and arr[3] == -1.0
    assert nab.MAX_TP == nab.scaled_sigmoid(-1.0)


def test_probationary_length() -> None:
    assert nab.probationary_length(100) == 15
    assert nab.probationary_length(4032) == 604  # floor(604.8)
    assert nab.probationary_length(5000) == 750
    assert nab.probationary_length(22695) == 750  # capped at 0.15 * 5000
    assert nab.probationary_length(0) == 0


def test_detection_at_window_start_scores_tp_weight() -> None:
    f = tiny_file()
    r = nab.score_file(f, detections(100, [40]), 0.5, STANDARD)
    assert r["score"] == pytest.approx(1.0 * STANDARD["tpWeight"], abs=1e-12)
    assert (r["tp"], r["fp"], r["fn"]) == (1, 0, 9)


def test_later_detections_score_less_and_only_the_first_counts() -> None:
    f = tiny_file()
    last = nab.score_file(f, detections(100, [49]), 0.5, STANDARD)["score"]
    assert last == pytest.approx(nab.scaled_sigmoid(-1 / 10) / nab.MAX_TP)  # width 10, last row
    assert 0 < last < 0.3  # tanh(0.25) / 0.98661
    middle = nab.score_file(f, detections(100, [45]), 0.5, STANDARD)["score"]
    assert last < middle < 1.0
    both = nab.score_file(f, detections(100, [45, 49]), 0.5, STANDARD)
    assert both["score"] == middle and both["tp"] == 2


def test_missed_window_costs_fn_weight() -> None:
    f = tiny_file()
    none = np.zeros(100)
    assert nab.score_file(f, none, 0.5, STANDARD)["score"] == -STANDARD["fnWeight"]
    assert nab.score_file(f, none, 0.5, LOW_FN)["score"] == -LOW_FN["fnWeight"] == -2.0


def test_false_positives() -> None:
    f = tiny_file()
    # before any window: a full -A_FP, and the window is missed as well
    r = nab.score_file(f, detections(100, [20]), 0.5, STANDARD)
    assert r["score"] == pytest.approx(-STANDARD["fpWeight"] - STANDARD["fnWeight"])
    assert (r["tp"], r["fp"]) == (0, 1)
    # after a window: weighted by the distance past its end, relative to its width - 1
    near = nab.score_file(f, detections(100, [40, 54]), 0.5, STANDARD)["score"] - 1.0
    assert near == pytest.approx(STANDARD["fpWeight"] * nab.scaled_sigmoid(5 / 9))
    far = nab.score_file(f, detections(100, [40, 90]), 0.5, STANDARD)["score"] - 1.0
    assert far == pytest.approx(-STANDARD["fpWeight"])  # 41 rows past a 10-row window: > 3 widths
    assert far < near < 0


def test_probationary_rows_are_not_scored() -> None:
    f = tiny_file()  # 100 rows: rows 0..14 are probationary
    assert nab.score_file(f, detections(100, [10, 14]), 0.5, STANDARD)["score"] == -1.0
    assert nab.score_file(f, detections(100, [15]), 0.5, STANDARD)["score"] == pytest.approx(-1.11)
    r = nab.score_file(f, np.zeros(100), 0.5, STANDARD)
    assert r["total"] == 85 and r["tn"] + r["fn"] == 85
    # a window inside the probationary period is neither a TP nor a FN, but FPs after it are relative to it
    g = tiny_file(windows=((2, 5), (40, 49)))
    assert nab.score_file(g, np.zeros(100), 0.5, STANDARD)["score"] == -1.0
    ok = nab.score_file(g, detections(100, [3, 40]), 0.5, STANDARD)["score"]
    assert ok == pytest.approx(1.0)
    h = tiny_file(windows=((10, 19),))  # straddles the end of the probationary period
    s, w, scorable = nab.sweep_scores(h, STANDARD)
    assert nab.score_file(h, detections(100, [10]), 0.5, STANDARD)["score"] == -1.0  # its start is probationary
    assert nab.score_file(h, detections(100, [15]), 0.5, STANDARD)["score"] == pytest.approx(s[15])
    assert not scorable[14] and scorable[15] and w[15] == 0


def test_corpus_threshold_and_normalisation() -> None:
    f1, f2 = tiny_file(name="a/one.csv"), tiny_file(windows=((30, 39), (70, 79)), name="b/two.csv")
    corpus = nab.Corpus({f1.relpath: f1, f2.relpath: f2})
    a1, a2 = np.zeros(100), np.zeros(100)
    a1[40], a2[30], a2[70] = 0.9, 0.9, 0.9  # perfect at 0.9 ...
    a1[60] = 0.5  # ... a false positive at 0.5
    a2[71] = 0.8  # a later detection in a window: threshold 0.8 scores exactly like 0.9
    out = nab.score_corpus(corpus, {f1.relpath: a1, f2.relpath: a2}, {"standard": STANDARD})["standard"]
    assert out["threshold"] == 0.9  # ties go to the highest threshold
    assert (out["raw"], out["null"], out["perfect"]) == (pytest.approx(3.0), -3.0, 3.0)
    assert out["score"] == pytest.approx(100.0)
    nothing = nab.score_corpus(corpus, {f1.relpath: np.zeros(100), f2.relpath: np.zeros(100)})["standard"]
    assert nothing["score"] == 0.0 and nothing["raw"] == -3.0
    only_fp = nab.score_corpus(corpus, {f1.relpath: a1 * (a1 < 0.6), f2.relpath: np.zeros(100)})
    assert only_fp["standard"]["threshold"] == nab.NO_DETECTION_THRESHOLD  # detecting nothing is best
    assert only_fp["standard"]["score"] == 0.0


def test_sweep_equals_brute_force() -> None:
    rng = np.random.default_rng(7)
    files = {}
    for k, wins in enumerate([((30, 44), (70, 84)), ((50, 69),), (), ((25, 25), (60, 64)), ((10, 40),)]):
        f = tiny_file(n=int(rng.integers(100, 160)), windows=wins, name=f"c/f{k}.csv")
        files[f.relpath] = f
    corpus = nab.Corpus(files)
    results = {rp: np.round(rng.random(len(f)) ** 3, 2) for rp, f in files.items()}  # many ties
    for profile in nab.NAB_PROFILES.values():
        out = nab.score_corpus(corpus, results, {"p": profile})["p"]
        candidates = sorted({nab.NO_DETECTION_THRESHOLD} | {float(x) for a in results.values() for x in a},
                            reverse=True)
        totals = [sum(nab.score_file(f, results[rp], t if t != 1.1 else np.inf, profile)["score"]
                      for rp, f in files.items()) for t in candidates]
        best = max(totals)
        first_best = next(t for t, v in zip(candidates, totals, strict=True) if v >= best - 1e-9)
        assert out["sweep_raw"] == pytest.approx(best, abs=1e-9)
        assert out["raw"] == pytest.approx(best, abs=1e-9)
        assert out["threshold"] == first_best


def test_duplicate_timestamps_follow_the_row_walk() -> None:
    ts = minutes(100)
    ts[60] = ts[59]  # a repeated timestamp (several NAB files have them)
    f = nab.DataFile.from_arrays("x/dup.csv", ts, [(ts[50], ts[59])])
    [span] = f.spans
    assert (span.entry, span.exit, span.right, span.width) == (50, 59, 59, 10)
    s, w, _ = nab.sweep_scores(f, STANDARD)
    assert w[59] == 0 and w[60] == -1 and s[60] == pytest.approx(0.11 * nab.scaled_sigmoid(1 / 9))


def test_bad_windows_are_rejected() -> None:
    ts = minutes(100)
    with pytest.raises(ValueError, match="not a row"):
        nab.DataFile.from_arrays("x/bad.csv", ts, [("2030-01-01 00:00:00", ts[10])])
    with pytest.raises(ValueError, match="overlap"):
        nab.DataFile.from_arrays("x/bad.csv", ts, [(ts[20], ts[40]), (ts[30], ts[50])])


def test_load_results_names_and_missing_files(tmp_path: Path) -> None:
    f = tiny_file(name="cat/tiny.csv")
    corpus = nab.Corpus({f.relpath: f})
    a = np.linspace(0, 1, 100)
    nab.write_results(tmp_path / "plain", corpus, {f.relpath: a})
    assert (tmp_path / "plain" / "cat" / "tiny.csv").is_file()
    assert nab.load_results(tmp_path / "plain", corpus)[f.relpath].tolist() == a.tolist()
    nab.write_results(tmp_path / "det", corpus, {f.relpath: a}, detector="det")
    assert nab.load_results(tmp_path / "det", corpus)[f.relpath].tolist() == a.tolist()
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="missing"):
        nab.load_results(tmp_path / "empty", corpus)
