"""A reduced NAB run end to end: detect, write NAB results files, score them with detectors.eval.nab.

The corpus is read from ``../shared/datasets/nab`` next to the repository
(override: ``LIFEWATCH_NAB_DIR``); without it the tests fail rather than skip.
The full 58-file run is ``make eval`` (``lifewatch eval nab``), not a test.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from detectors.eval import nab
from detectors.eval.nab_run import cli, run_nab, score_file

NAB_DIR = Path(os.environ.get("LIFEWATCH_NAB_DIR")
               or Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "nab")
FILES = [
    "artificialNoAnomaly/art_flatline.csv",  # constant: no scale at all
    "artificialWithAnomaly/art_daily_jumpsup.csv",
    "realAdExchange/exchange-2_cpc_results.csv",  # hourly
    "realKnownCause/rogue_agent_key_hold.csv",
    "realTraffic/speed_7578.csv",  # irregular timestamps, 4 short windows
]
PROFILES = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


@pytest.fixture(scope="module")
def nab_dir() -> Path:
    if not (NAB_DIR / nab.WINDOWS_FILE).is_file():
        pytest.fail(f"NAB corpus not found at {NAB_DIR} (set LIFEWATCH_NAB_DIR)", pytrace=False)
    return NAB_DIR


@pytest.fixture(scope="module")
def run(nab_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("nab")
    return run_nab(nab_dir, out, files=FILES), out


def test_results_files_in_nab_format(nab_dir: Path, run: tuple[dict, Path]) -> None:
    doc, out = run
    corpus = nab.load_corpus(nab_dir)
    assert doc["results_dir"] == str(out / "lifewatch")
    for rel in FILES:
        cat, name = rel.split("/")
        path = out / "lifewatch" / cat / f"lifewatch_{name}"
        assert path.is_file(), path
        df = pd.read_csv(path)
        data = pd.read_csv(nab_dir / "data" / rel)
        assert list(df.columns) == ["timestamp", "value", "anomaly_score", "label"]
        assert len(df) == len(data) == len(corpus.files[rel])
        assert (df["timestamp"] == data["timestamp"]).all()
        assert np.isfinite(df["anomaly_score"]).all()
        assert df["anomaly_score"].between(0.0, 1.0).all()
        assert df["label"].sum() == corpus.files[rel].labels().sum()
        prob = nab.probationary_length(len(df))
        assert (df["anomaly_score"].to_numpy()[: min(prob, 200)] == 0).all()  # warm-up: exactly 0


def test_scores_are_finite_and_rescore_identically(nab_dir: Path, run: tuple[dict, Path]) -> None:
    doc, out = run
    assert doc["files"] == len(FILES) and doc["scorer"] == "surprise_ensemble"
    for p in PROFILES:
        assert math.isfinite(doc[p]) and -1000 < doc[p] <= 100
        assert 0.0 <= doc["profiles"][p]["threshold"] <= 1.1
    corpus = nab.load_corpus(nab_dir)
    sub = nab.Corpus({f: corpus.files[f] for f in FILES}, corpus.root)
    again = nab.score_corpus(sub, nab.load_results(out / "lifewatch", sub, detector="lifewatch"))
    for p in PROFILES:
        assert again[p]["score"] == pytest.approx(doc[p], abs=1e-9)
    # the jump in art_daily_jumpsup is found inside its window
    f = corpus.files["artificialWithAnomaly/art_daily_jumpsup.csv"]
    s = pd.read_csv(out / "lifewatch" / "artificialWithAnomaly" / "lifewatch_art_daily_jumpsup.csv")["anomaly_score"]
    sp = f.spans[0]
    assert s[sp.entry: sp.exit + 1].max() > s[nab.probationary_length(len(f)): sp.entry].max()


def test_batching_does_not_change_scores(nab_dir: Path) -> None:
    f = nab.load_corpus(nab_dir).files["realTraffic/speed_7578.csv"]
    whole = score_file(f.values, f.timestamps)
    np.testing.assert_array_equal(score_file(f.values, f.timestamps, batch=97), whole)


def test_cli_json_is_only_json(nab_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    import detectors.eval.nab_run as mod

    real = mod.run_nab
    monkeypatch.setattr(mod, "run_nab", lambda d, o: real(d, o, files=FILES[:2]))
    assert cli(argparse.Namespace(nab=str(nab_dir), out=str(tmp_path), json=True)) == 0
    doc = json.loads(capsys.readouterr().out)
    assert set(PROFILES) <= set(doc)
    assert cli(argparse.Namespace(nab=str(nab_dir), out=str(tmp_path), json=False)) == 0
    text = capsys.readouterr().out
    assert "Standard" in text and "Reward low FP" in text and "Reward low FN" in text
    assert cli(argparse.Namespace(nab=str(tmp_path / "nowhere"), out=str(tmp_path), json=True)) == 2
