"""An independent implementation of the NAB (Numenta Anomaly Benchmark) scorer.

References
----------
* A. Lavin and S. Ahmad, "Evaluating Real-time Anomaly Detection Algorithms --
  the Numenta Anomaly Benchmark", IEEE ICMLA 2015 (arXiv:1510.03336).
* The NAB repository, https://github.com/numenta/NAB, whose ``nab/sweeper.py``
  (``Sweeper.calcSweepScore`` / ``calcScoreByThreshold`` / ``scoreDataSet``),
  ``nab/optimizer.py`` (``optimizeThreshold``), ``nab/scorer.py``
  (``scoreCorpus``), ``nab/runner.py`` (``Runner.normalize``) and
  ``nab/labeler.py`` define the benchmark's scores. The data under
  ``shared/datasets/nab`` is a copy of commit ea702d7 (NAB v1.1); this module
  was written from the description and checked against the published scores of
  that commit, it contains no NAB code.

The algorithm
-------------
Corpus: 58 data files (``data/<category>/<file>.csv``: ``timestamp,value``) and
``labels/combined_windows.json`` mapping each file to a list of anomaly windows
``[start, end]`` whose timestamps exactly match rows of the file (116 windows).

Per-row sweep score (``sweep_scores``). Walk the rows of a file in order;
a window is entered on the row whose timestamp equals the next window's start
and left after the row whose timestamp equals its end. With ``R`` = index of
(the first row with) the end timestamp, ``W = R - start_index + 1`` the width
and ``sigma(x) = 2 / (1 + exp(5x)) - 1`` (the "scaled sigmoid", forced to -1
for ``x > 3``):

* a row ``i`` inside a window scores ``A_TP * sigma(-(R - i + 1) / W) / sigma(-1)``:
  exactly ``+A_TP`` on the window's first row, falling to
  ``A_TP * sigma(-1/W) / sigma(-1)`` (about ``2.5 A_TP / W``) on its last;
* a row outside every window scores ``A_FP * sigma(|i - R'| / (W' - 1))`` where
  ``R'``, ``W'`` belong to the closest *preceding* window (``R'`` = the row on
  which it was left): just after a window a false positive costs little, from
  three window widths on it costs the full ``-A_FP``; before the first window
  of a file it costs ``-A_FP``.

Probationary period: the first ``min(floor(0.15 * n), 0.15 * 5000)`` rows of
a file (``n`` rows), i.e. at most 750, are dropped from scoring (their rows
still define the windows).

Score at a threshold ``t``: a row is a detection when its anomaly score is
``>= t``. Every window contributes the sweep score of its *best* (= earliest)
detection, or ``-A_FN`` if none of its scorable rows is detected (windows with
no scorable row contribute nothing); every detection outside windows adds its
(negative) sweep score. So only the first detection in a window counts, and
later ones are free.

Threshold (``nab/optimizer.py``): one threshold per profile for the whole
corpus. All scorable rows of all files are sorted by anomaly score, highest
first; the candidate thresholds are ``1.1`` (no detection at all) and every
distinct anomaly score, and each is scored with all rows ``>=`` it detected.
The best total wins; among exactly equal totals the *highest* threshold wins
(NAB sorts the candidates stably by score, descending). The corpus is then
scored at that threshold, file by file, and the file scores are summed (the
``Totals`` row of NAB's ``<detector>_<profile>_scores.csv``).

Normalisation (``Runner.normalize``)::

    score = 100 * (raw - null) / (perfect - null)

``perfect = A_TP * number of windows in the label file`` (116) and ``null`` is
the corpus score of the null detector, i.e. with no detections:
``-A_FN * number of windows with scorable rows`` (all 116 of the corpus:
-116 standard, -232 reward_low_FN_rate).

Profiles (``config/profiles.json``): standard ``A_TP=1, A_FP=0.11, A_FN=1``;
reward_low_FP_rate ``A_FP=0.22``; reward_low_FN_rate ``A_FN=2``.

Reproduction of the published scores
------------------------------------
For the published ``results/numenta`` and ``results/windowedGaussian`` this
gives 70.10 / 63.21 / 74.32 and 39.65 / 20.87 / 47.41 (standard /
reward_low_FP_rate / reward_low_FN_rate); NAB's ``final_results.json`` says
70.10 / 63.12 / 74.32 and 39.65 / 20.87 / 47.41. Scored at the thresholds of
NAB's ``<detector>_<profile>_scores.csv`` (``score_corpus(..., thresholds=)``)
the raw totals and TP/TN/FP/FN counts equal NAB's ``Totals`` rows to 1e-9.
The one difference, numenta reward_low_FP_rate, is in the threshold, not the
scorer: the published thresholds (e.g. 0.5752 there, 0.5422 for standard)
are not anomaly scores of the results at all. They look like the output of
the local hill-climbing search ("twiddle", starting at 0.5) that older NAB
versions' ``optimizer.py`` used before the corpus-wide sweep; the sweep over
all thresholds finds a better one for that profile (0.5431: raw 30.645
instead of 30.431), and the same total as NAB's for the five others.
(The ``S(t)_*`` columns of the published results files are non-zero only on
detections, so they too come from an older scorer and are not comparable with
``sweep_scores``.) NAB's ``Total_Count`` counts every row; ``total`` here
counts the scored (non-probationary) rows.

Deviations from the NAB code (none of them changes a score of the corpus)
------------------------------------------------------------------------
* ``null`` is computed, not read from the results of a separately run null
  detector; for a detector that never detects they are the same number
  (the null detector's constant score only ever loses to "no detection").
* NAB re-scores each file at the chosen threshold by looking the threshold up
  among that file's own scores and fails when every scorable row of a file
  is above the threshold; here the file is simply scored with ``score >= t``,
  which is the same value whenever NAB gives one. The "no detection"
  candidate is reported as threshold 1.1 but scored as no detection even if
  some anomaly scores exceed 1.1 (scores are expected in [0, 1]).
* A window one row wide makes NAB divide by zero when scoring the false
  positives after it; here those positions are infinite, i.e. cost ``-A_FP``.
* Overlapping windows, window timestamps absent from the data file and NaN
  anomaly scores raise ``ValueError`` instead of being scored in some
  order-dependent way.
* Corpus totals are computed with numpy cumulative sums instead of summing a
  dictionary per threshold, so totals may differ from NAB's in the last bits
  (~1e-12); exact ties (thresholds that add no better detection and no false
  positive) are kept exact.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

PROBATIONARY_PERCENT = 0.15
#: the probationary period is capped at ``PROBATIONARY_PERCENT * PROBATION_CAP_ROWS`` (= 750) rows
PROBATION_CAP_ROWS = 5000
#: threshold meaning "no detection at all" (NAB starts its sweep there)
NO_DETECTION_THRESHOLD = 1.1
WINDOWS_FILE = "labels/combined_windows.json"
PROFILES_FILE = "config/profiles.json"

#: the cost matrices of ``config/profiles.json`` (tnWeight is unused by the scorer)
NAB_PROFILES: dict[str, dict[str, float]] = {
    "standard": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0},
    "reward_low_FP_rate": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.22, "tnWeight": 1.0},
    "reward_low_FN_rate": {"tpWeight": 1.0, "fnWeight": 2.0, "fpWeight": 0.11, "tnWeight": 1.0},
}
PROFILE_NAMES = tuple(NAB_PROFILES)


# --------------------------------------------------------------------------- scoring function


def scaled_sigmoid(x):
    """NAB's scaled sigmoid ``2 * sigmoid(-5x) - 1``, equal to -1 for ``x > 3``.

    ``x`` is the relative position to a window: -1 = the window's first row
    (0.98661), 0 = its right edge (0), 1 = one window width past it (-0.98661).
    Accepts a scalar (returns a float) or an array.
    """
    arr = np.asarray(x, dtype=float)
    with np.errstate(over="ignore"):
        val = 2.0 * (1.0 / (1.0 + np.exp(-(-5.0 * arr)))) - 1.0
    out = np.where(arr > 3.0, -1.0, val)
    return float(out) if out.ndim == 0 else out


MAX_TP = float(scaled_sigmoid(-1.0))


def probationary_length(n_rows: int, percent: float = PROBATIONARY_PERCENT) -> int:
    """Number of leading rows that are not scored: ``min(floor(p * n), p * 5000)`` (750 for p=0.15).

    NAB compares the row index ``i >= min(...)``; as the cap ``p * 5000`` may be
    fractional for other ``p`` this returns its ceiling, which selects the same rows.
    """
    return int(math.ceil(min(math.floor(percent * n_rows), percent * PROBATION_CAP_ROWS)))


def cost_matrix(profile: Mapping) -> dict[str, float]:
    """The cost matrix of a profile given either as ``{"CostMatrix": {...}}`` or as the matrix itself."""
    m = profile.get("CostMatrix", profile)
    return {k: float(m[k]) for k in ("tpWeight", "fpWeight", "fnWeight")}


def load_profiles(nab_dir: str | os.PathLike | None = None) -> dict[str, dict[str, float]]:
    """The profiles of ``<nab_dir>/config/profiles.json`` as ``{name: cost matrix}``, else NAB's defaults."""
    if nab_dir is not None:
        path = Path(nab_dir) / PROFILES_FILE
        if path.is_file():
            with open(path) as f:
                return {name: cost_matrix(p) for name, p in json.load(f).items()}
    return {name: cost_matrix(p) for name, p in NAB_PROFILES.items()}


# --------------------------------------------------------------------------- corpus


@dataclass(frozen=True)
class WindowSpan:
    """Where a labelled window sits in the rows of its file, as NAB's sweep walks it."""

    entry: int  # row on which the window is entered (first row equal to its start after the previous window)
    exit: int  # row after which it is left (first row equal to its end from ``entry`` on)
    right: int  # first row whose timestamp equals the end (NAB's ``timestamps.index(end)``)
    width: int  # ``right - (first row equal to the start) + 1``


@dataclass
class DataFile:
    """One NAB data file with its labelled windows."""

    relpath: str  # e.g. "realKnownCause/nyc_taxi.csv"
    timestamps: np.ndarray  # datetime64[ns]
    windows: list[tuple[str, str]]  # the labels as written in the windows file
    timestamp_text: np.ndarray | None = None  # the timestamps as written in the data file (for write_results)
    values: np.ndarray | None = None  # the "value" column as written in the data file
    spans: list[WindowSpan] = field(init=False)

    def __post_init__(self) -> None:
        self.timestamps = np.asarray(self.timestamps, dtype="datetime64[ns]")
        self.windows = [(str(a), str(b)) for a, b in self.windows]
        self.spans = _window_spans(self.timestamps, self.windows, self.relpath)

    @classmethod
    def from_arrays(cls, relpath: str, timestamps: Sequence, windows: Sequence[Sequence[str]] = (),
                    values: Sequence | None = None) -> DataFile:
        """Build a file from in-memory timestamps (strings or datetimes) and window limits."""
        ts = pd.to_datetime(pd.Series(list(timestamps)), format="ISO8601").to_numpy(dtype="datetime64[ns]")
        text = np.asarray([str(t) for t in timestamps], dtype=object)
        vals = None if values is None else np.asarray(values, dtype=object)
        return cls(relpath, ts, [tuple(w) for w in windows], text, vals)

    def __len__(self) -> int:
        return len(self.timestamps)

    def labels(self) -> np.ndarray:
        """NAB's per-row label: 1 if the row's timestamp lies in some window ``[start, end]``."""
        lab = np.zeros(len(self), dtype=np.int64)
        for start, end in self.windows:
            a, b = _parse_ts(start), _parse_ts(end)
            lab[(self.timestamps >= a) & (self.timestamps <= b)] = 1
        return lab


@dataclass
class Corpus:
    """The NAB corpus: data files keyed by their path relative to ``data/``."""

    files: dict[str, DataFile]
    root: Path | None = None

    @property
    def n_windows(self) -> int:
        """Number of labelled windows (NAB's perfect score is ``A_TP`` times this)."""
        return sum(len(f.windows) for f in self.files.values())

    @property
    def n_rows(self) -> int:
        return sum(len(f) for f in self.files.values())

    def __len__(self) -> int:
        return len(self.files)


def _parse_ts(text: str) -> np.datetime64:
    return pd.Timestamp(text).to_datetime64().astype("datetime64[ns]")


def _window_spans(ts: np.ndarray, windows: list[tuple[str, str]], relpath: str) -> list[WindowSpan]:
    """Replay NAB's row walk (``Sweeper.calcSweepScore``) to locate each window's rows.

    Works with duplicated and non-monotonic timestamps (several NAB files have
    them) exactly like the walk: windows are entered in label order on the first
    matching row after the previous window was left.
    """
    ts_i = ts.view("int64")
    spans: list[WindowSpan] = []
    pos = 0
    limits = [(int(_parse_ts(a).astype("int64")), int(_parse_ts(b).astype("int64"))) for a, b in windows]
    for k, (start, end) in enumerate(limits):
        start_rows = np.flatnonzero(ts_i == start)
        end_rows = np.flatnonzero(ts_i == end)
        if not start_rows.size or not end_rows.size:
            raise ValueError(f"{relpath}: window {windows[k]} has a timestamp that is not a row of the data file "
                             "(NAB requires window limits to match data timestamps exactly)")
        later_starts = start_rows[start_rows >= pos]
        if not later_starts.size:
            raise ValueError(f"{relpath}: window {windows[k]} starts before the previous window ends (overlap)")
        entry = int(later_starts[0])
        later_ends = end_rows[end_rows >= entry]
        if not later_ends.size:
            raise ValueError(f"{relpath}: window {windows[k]} never ends after it starts")
        exit_ = int(later_ends[0])
        right = int(end_rows[0])
        width = right - int(start_rows[0]) + 1
        if width < 1:
            raise ValueError(f"{relpath}: window {windows[k]} ends before it starts")
        if k + 1 < len(limits):
            nxt = np.flatnonzero(ts_i[entry + 1: exit_ + 1] == limits[k + 1][0])
            if nxt.size:
                raise ValueError(f"{relpath}: windows {windows[k]} and {windows[k + 1]} overlap")
        spans.append(WindowSpan(entry, exit_, right, width))
        pos = exit_ + 1
    return spans


def load_corpus(nab_dir: str | os.PathLike, windows_file: str | os.PathLike = WINDOWS_FILE) -> Corpus:
    """Load ``<nab_dir>/data`` and the windows of ``<nab_dir>/<windows_file>``.

    Only the files named in the windows file are loaded (all 58 for
    ``combined_windows.json``). Raises ``FileNotFoundError`` if the folder or a
    data file is missing and ``ValueError`` if a window does not match the data.
    """
    root = Path(nab_dir)
    wpath = Path(windows_file)
    if not wpath.is_absolute():
        wpath = root / wpath
    if not wpath.is_file():
        raise FileNotFoundError(f"NAB windows file not found: {wpath}")
    with open(wpath) as f:
        all_windows: dict[str, list] = json.load(f)
    files: dict[str, DataFile] = {}
    for relpath in sorted(all_windows):
        path = root / "data" / relpath
        if not path.is_file():
            raise FileNotFoundError(f"NAB data file not found: {path}")
        df = pd.read_csv(path, usecols=["timestamp", "value"], dtype=str, keep_default_na=False)
        text = df["timestamp"].to_numpy(dtype=object)
        ts = pd.to_datetime(df["timestamp"], format="ISO8601").to_numpy(dtype="datetime64[ns]")
        files[relpath] = DataFile(relpath, ts, [tuple(w) for w in all_windows[relpath]], text,
                                  df["value"].to_numpy(dtype=object))
    return Corpus(files, root)


# --------------------------------------------------------------------------- results


def _results_path(results_dir: Path, relpath: str, detector: str | None) -> Path | None:
    category, name = os.path.split(relpath)
    folder = results_dir / category
    candidates = []
    if detector:
        candidates.append(folder / f"{detector}_{name}")
    candidates.append(folder / name)
    candidates.append(folder / f"{results_dir.name}_{name}")
    for c in candidates:
        if c.is_file():
            return c
    matches = sorted(folder.glob(f"*_{name}")) if folder.is_dir() else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ValueError(f"several results files for {relpath} in {folder}: {[m.name for m in matches]} "
                         "(pass detector= to choose)")
    return None


def load_results(results_dir: str | os.PathLike, corpus: Corpus, detector: str | None = None,
                 check_timestamps: bool = True) -> dict[str, np.ndarray]:
    """Anomaly scores of a detector for every corpus file, as ``{relpath: float array}``.

    ``results_dir`` holds one CSV per data file in its category folder, named
    either like the data file or ``<detector>_<file>`` (NAB's layout,
    ``results/<detector>/<category>/<detector>_<file>.csv``); only the
    ``timestamp`` and ``anomaly_score`` columns are used. Every file must have
    exactly the rows of its data file. Raises ``FileNotFoundError`` when files
    are missing and ``ValueError`` on mismatched rows or NaN scores.
    """
    rdir = Path(results_dir)
    if not rdir.is_dir():
        raise FileNotFoundError(f"results folder not found: {rdir}")
    out: dict[str, np.ndarray] = {}
    missing = []
    for relpath, dfile in corpus.files.items():
        path = _results_path(rdir, relpath, detector)
        if path is None:
            missing.append(relpath)
            continue
        df = pd.read_csv(path, usecols=["timestamp", "anomaly_score"], dtype={"timestamp": str})
        scores = df["anomaly_score"].to_numpy(dtype=float)
        if len(scores) != len(dfile):
            raise ValueError(f"{path}: {len(scores)} rows, but the data file has {len(dfile)}")
        if np.isnan(scores).any():
            raise ValueError(f"{path}: anomaly_score has missing values")
        if check_timestamps:
            text = df["timestamp"].to_numpy(dtype=object)
            if dfile.timestamp_text is None or not np.array_equal(text, dfile.timestamp_text):
                ts = pd.to_datetime(df["timestamp"], format="ISO8601").to_numpy(dtype="datetime64[ns]")
                if not np.array_equal(ts, dfile.timestamps):
                    raise ValueError(f"{path}: timestamps differ from the data file {relpath}")
        out[relpath] = scores
    if missing:
        raise FileNotFoundError(f"{len(missing)} results files missing in {rdir}: {', '.join(missing[:5])}"
                                + (" ..." if len(missing) > 5 else ""))
    return out


def write_results(results_dir: str | os.PathLike, corpus: Corpus, scores: Mapping[str, Sequence[float]],
                  detector: str | None = None) -> list[Path]:
    """Write anomaly scores as NAB results files, so the run can be scored later by ``load_results``.

    For each ``relpath -> scores`` writes ``<results_dir>/<category>/[<detector>_]<file>.csv``
    with the columns ``timestamp,value,anomaly_score,label`` (timestamps and
    values as in the data file, ``label`` = 1 inside a labelled window). Use
    ``results_dir = .../results/<detector>`` to get NAB's own layout. Returns the
    written paths.
    """
    rdir = Path(results_dir)
    written = []
    for relpath, s in scores.items():
        if relpath not in corpus.files:
            raise KeyError(f"{relpath} is not a corpus file")
        dfile = corpus.files[relpath]
        arr = np.asarray(s, dtype=float)
        if arr.shape != (len(dfile),):
            raise ValueError(f"{relpath}: {arr.shape[0] if arr.ndim else 0} scores for {len(dfile)} rows")
        category, name = os.path.split(relpath)
        folder = rdir / category
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (f"{detector}_{name}" if detector else name)
        text = dfile.timestamp_text
        if text is None:
            text = pd.Series(dfile.timestamps).dt.strftime("%Y-%m-%d %H:%M:%S").to_numpy(dtype=object)
        values = dfile.values if dfile.values is not None else np.full(len(dfile), "", dtype=object)
        pd.DataFrame({"timestamp": text, "value": values, "anomaly_score": arr,
                      "label": dfile.labels()}).to_csv(path, index=False)
        written.append(path)
    return written


# --------------------------------------------------------------------------- per-file sweep


def sweep_scores(dfile: DataFile, cost: Mapping, probationary_percent: float = PROBATIONARY_PERCENT
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """NAB's per-row scores of one file (the ``S(t)_<profile>`` column of scored results files).

    Returns ``(score, window, scorable)``: the weighted score a detection on each
    row would get, the index of the window containing the row (-1 outside
    windows), and whether the row is past the probationary period.
    """
    c = cost_matrix(cost)
    n = len(dfile)
    rows = np.arange(n)
    score = np.empty(n, dtype=float)
    window = np.full(n, -1, dtype=np.int64)
    first = dfile.spans[0].entry if dfile.spans else n
    score[:first] = -1.0 * c["fpWeight"]
    for k, sp in enumerate(dfile.spans):
        inside = rows[sp.entry: sp.exit + 1]
        pos = -(sp.right - inside + 1) / float(sp.width)
        score[sp.entry: sp.exit + 1] = scaled_sigmoid(pos) * c["tpWeight"] / MAX_TP
        window[sp.entry: sp.exit + 1] = k
        stop = dfile.spans[k + 1].entry if k + 1 < len(dfile.spans) else n
        after = rows[sp.exit + 1: stop]
        denom = float(sp.width - 1)
        with np.errstate(divide="ignore"):
            pos_after = np.abs(sp.exit - after) / denom if denom > 0 else np.full(len(after), np.inf)
        score[sp.exit + 1: stop] = scaled_sigmoid(pos_after) * c["fpWeight"]
    scorable = rows >= probationary_length(n, probationary_percent)
    return score, window, scorable


def score_file(dfile: DataFile, anomaly_scores: Sequence[float], threshold: float, cost: Mapping,
               probationary_percent: float = PROBATIONARY_PERCENT) -> dict:
    """Raw NAB score of one file at ``threshold`` (detection = anomaly score ``>= threshold``).

    Returns ``{"score", "tp", "tn", "fp", "fn", "total"}``; the counts are of
    scorable rows (a detected row in a window counts as a TP even when it is not
    the window's first detection), as in NAB's scores CSV.
    """
    c = cost_matrix(cost)
    a = np.asarray(anomaly_scores, dtype=float)
    if a.shape != (len(dfile),):
        raise ValueError(f"{dfile.relpath}: {a.size} anomaly scores for {len(dfile)} rows")
    s, w, ok = sweep_scores(dfile, c, probationary_percent)
    det = ok & (a >= threshold)
    out = w < 0
    total = float(np.sum(s[det & out]))
    for k in range(len(dfile.spans)):
        in_k = ok & (w == k)
        if not in_k.any():
            continue  # window entirely in the probationary period: not scored
        hit = det & in_k
        total += max(-c["fnWeight"], float(s[hit].max())) if hit.any() else -c["fnWeight"]
    return {"score": total, "tp": int((det & ~out).sum()), "tn": int((ok & out & ~det).sum()),
            "fp": int((det & out).sum()), "fn": int((ok & ~out & ~det).sum()), "total": int(ok.sum())}


# --------------------------------------------------------------------------- corpus sweep


@dataclass
class _Flat:
    """The scorable rows of the whole corpus, concatenated file after file."""

    anomaly: np.ndarray
    unweighted_tp: np.ndarray  # sweep score / tpWeight for rows in windows, 0 elsewhere
    unweighted_fp: np.ndarray  # sweep score / fpWeight for rows outside windows, 0 elsewhere
    window: np.ndarray  # corpus-wide window id, -1 outside windows
    n_scored_windows: int


def _flatten(corpus: Corpus, results: Mapping[str, np.ndarray], probationary_percent: float) -> _Flat:
    unit = {"tpWeight": 1.0, "fpWeight": 1.0, "fnWeight": 1.0}
    parts_a, parts_tp, parts_fp, parts_w = [], [], [], []
    offset = 0
    for relpath, dfile in corpus.files.items():
        if relpath not in results:
            raise KeyError(f"no results for {relpath}")
        a = np.asarray(results[relpath], dtype=float)
        if a.shape != (len(dfile),):
            raise ValueError(f"{relpath}: {a.size} anomaly scores for {len(dfile)} rows")
        if np.isnan(a).any():
            raise ValueError(f"{relpath}: NaN anomaly scores")
        s, w, ok = sweep_scores(dfile, unit, probationary_percent)
        inw = w >= 0
        parts_a.append(a[ok])
        parts_tp.append(np.where(inw, s, 0.0)[ok])
        parts_fp.append(np.where(inw, 0.0, s)[ok])
        parts_w.append(np.where(inw, w + offset, -1)[ok])
        offset += len(dfile.spans)
    window = np.concatenate(parts_w) if parts_w else np.empty(0, dtype=np.int64)
    n_scored = int(np.unique(window[window >= 0]).size)
    return _Flat(np.concatenate(parts_a) if parts_a else np.empty(0), np.concatenate(parts_tp) if parts_tp else
                 np.empty(0), np.concatenate(parts_fp) if parts_fp else np.empty(0), window, n_scored)


@dataclass
class _Order:
    """Rows sorted by anomaly score (highest first) and, for window rows, their grouping by window."""

    order: np.ndarray
    ends: np.ndarray  # last sorted position of each group of equal anomaly scores
    thresholds: np.ndarray  # the anomaly score of each group
    win_pos: np.ndarray  # sorted positions of window rows, grouped by window, in sweep order
    win_best: np.ndarray  # for each of those, the flat index of the window's earliest row seen so far
    win_first: np.ndarray  # True where a window's group starts


def _prepare_order(flat: _Flat) -> _Order:
    order = np.argsort(-flat.anomaly, kind="stable")
    a_sorted = flat.anomaly[order]
    if a_sorted.size:
        ends = np.append(np.flatnonzero(a_sorted[1:] != a_sorted[:-1]), a_sorted.size - 1)
    else:
        ends = np.empty(0, dtype=np.int64)
    w_sorted = flat.window[order]
    win_pos = np.flatnonzero(w_sorted >= 0)
    wid = w_sorted[win_pos]
    g = np.lexsort((win_pos, wid))  # by window, then by sweep position
    win_pos, wid = win_pos[g], wid[g]
    flat_idx = order[win_pos]
    # Within a window the sweep score strictly decreases along the rows, so the best
    # detection so far is the earliest row so far: a running minimum of the flat row
    # index, restarted at each window by offsetting later windows downwards.
    big = np.int64(flat.anomaly.size + 1)
    key = flat_idx.astype(np.int64) - wid.astype(np.int64) * big
    best = np.minimum.accumulate(key) + wid.astype(np.int64) * big if key.size else key
    first = np.ones(wid.size, dtype=bool)
    first[1:] = wid[1:] != wid[:-1]
    return _Order(order, ends, a_sorted[ends], win_pos, best, first)


def _sweep_profile(flat: _Flat, od: _Order, c: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Corpus totals for every candidate threshold, highest threshold first (NAB's ``calcScoreByThreshold``).

    Returns ``(thresholds, scoring_thresholds, totals)``; the scoring threshold
    of the "no detection" candidate (reported as 1.1) is +inf.
    """
    null = -c["fnWeight"] * flat.n_scored_windows
    inc = flat.unweighted_fp[od.order] * c["fpWeight"]
    if od.win_pos.size:
        tp_scores = flat.unweighted_tp * c["tpWeight"]
        best_val = np.maximum(tp_scores[od.win_best], -c["fnWeight"])
        prev_val = np.empty_like(best_val)
        prev_val[1:] = best_val[:-1]
        prev_val[od.win_first] = -c["fnWeight"]
        # inc is zero on window rows, so assignment is enough; unchanged bests add exactly 0.0
        inc[od.win_pos] = best_val - prev_val
    totals = null + np.cumsum(inc)[od.ends] if inc.size else np.empty(0)
    thresholds = od.thresholds
    # NAB records the "no detection" row first, unless the highest anomaly score is exactly 1.1
    scoring = thresholds
    if not (thresholds.size and thresholds[0] == NO_DETECTION_THRESHOLD):
        thresholds = np.concatenate([[NO_DETECTION_THRESHOLD], thresholds])
        scoring = np.concatenate([[np.inf], scoring])
        totals = np.concatenate([[null], totals])
    return thresholds, scoring, totals


def _best_index(totals: np.ndarray) -> int:
    """The first (= highest threshold) of the best totals: NAB sorts the candidates stably by score, descending."""
    return int(np.argmax(totals))


def score_corpus(corpus: Corpus, results: Mapping[str, np.ndarray], profiles: Mapping | None = None,
                 probationary_percent: float = PROBATIONARY_PERCENT, per_file: bool = False,
                 thresholds: Mapping[str, float] | None = None) -> dict:
    """Optimise one threshold per profile over the corpus and return the NAB scores.

    ``profiles`` maps profile names to cost matrices (``{"tpWeight", "fpWeight",
    "fnWeight"}``, optionally wrapped in ``{"CostMatrix": ...}`` as in
    ``config/profiles.json``); default: the corpus' ``config/profiles.json``, else
    NAB's three profiles. Returns, for each profile::

        {"score": normalised score (100 = perfect, 0 = null detector),
         "threshold": optimised threshold, "raw": corpus total at it,
         "null": -fnWeight * scored windows, "perfect": tpWeight * windows,
         "tp", "tn", "fp", "fn", "total": row counts (scorable rows),
         "files": {relpath: file result}  (only with per_file=True)}

    ``thresholds`` (``{profile: threshold}``) skips the optimisation for the
    profiles it names and scores them at the given threshold instead, as NAB's
    ``--score`` step does with ``config/thresholds.json``; ``sweep_raw`` is then
    the best total the sweep found.
    """
    if profiles is None:
        profiles = load_profiles(corpus.root)
    flat = _flatten(corpus, results, probationary_percent)
    od = _prepare_order(flat)
    out: dict[str, dict] = {}
    for name, prof in profiles.items():
        c = cost_matrix(prof)
        candidates, scoring, totals = _sweep_profile(flat, od, c)
        best = _best_index(totals)
        threshold, at, sweep_total = float(candidates[best]), float(scoring[best]), float(totals[best])
        if thresholds is not None and name in thresholds:
            threshold = at = float(thresholds[name])
        file_results = {rp: score_file(df, results[rp], at, c, probationary_percent)
                        for rp, df in corpus.files.items()}
        raw = float(sum(r["score"] for r in file_results.values()))
        null = -c["fnWeight"] * flat.n_scored_windows
        perfect = c["tpWeight"] * corpus.n_windows
        res = {"score": normalise(raw, null, perfect), "threshold": threshold, "raw": raw, "null": null,
               "perfect": perfect, "sweep_raw": sweep_total}
        for key in ("tp", "tn", "fp", "fn", "total"):
            res[key] = int(sum(r[key] for r in file_results.values()))
        if per_file:
            res["files"] = file_results
        out[name] = res
    return out


def normalise(raw: float, null: float, perfect: float) -> float:
    """NAB's normalised score ``100 * (raw - null) / (perfect - null)``."""
    return 100.0 * (raw - null) / (perfect - null)


def score_results_dir(nab_dir: str | os.PathLike, results_dir: str | os.PathLike, detector: str | None = None,
                      profiles: Mapping | None = None) -> dict:
    """Load the corpus of ``nab_dir`` and score the detector results in ``results_dir``."""
    corpus = load_corpus(nab_dir)
    results = load_results(results_dir, corpus, detector=detector)
    return score_corpus(corpus, results, profiles if profiles is not None else load_profiles(nab_dir))
