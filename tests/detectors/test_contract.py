"""The scorer contract (detectors.base), checked for EVERY registered scorer.

Parametrised over :func:`detectors.base.all_scorers`, so a newly registered
scorer gets every check for free (River's ``river/checks`` idea).  Each check
uses the scorer's default parameters on the same synthetic multi-stream data:
noisy daily cycles read every minute, with spikes, a level shift, missing
values (NaN) and irregular gaps.
"""

from __future__ import annotations

import datetime as _dt
import time
from collections.abc import Callable

import numpy as np
import pytest

from detectors.base import Scorer, all_scorers, create
from detectors.scorers.ewz import EWZ

SCORERS = sorted(all_scorers())
NS_MIN = 60 * 1_000_000_000
T0 = 1_767_571_200 * 1_000_000_000  # 2026-01-05T00:00:00Z


def stream(k: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """One stream: (t, x), minute readings with jitter and gaps, a daily cycle, noise, spikes, a shift, NaNs."""
    rng = np.random.default_rng(1000 * seed + k)
    gaps = rng.choice([1, 1, 1, 1, 2, 5], size=n)
    t = T0 + k * 7_000_000_000 + np.cumsum(gaps) * NS_MIN + rng.integers(0, 2_000_000_000, n)
    hours = (t - T0) / 3.6e12
    x = (10.0 * (k + 1) + 3.0 * np.sin(2 * np.pi * hours / 24) + rng.normal(0, 0.5 + 0.2 * k, n))
    x[rng.choice(n, n // 100, replace=False)] += rng.normal(0, 8, n // 100)  # spikes
    x[int(0.8 * n):] += 4.0  # a lasting level shift
    x[rng.choice(n, n // 50, replace=False)] = np.nan  # missing readings
    return t, x


def interleave(n_streams: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Several streams merged in event-time order: (slots, t, x)."""
    parts = [stream(k, n, seed) for k in range(n_streams)]
    slots = np.concatenate([np.full(n, k, dtype=np.int64) for k in range(n_streams)])
    t = np.concatenate([p[0] for p in parts])
    x = np.concatenate([p[1] for p in parts])
    order = np.argsort(t, kind="stable")
    return slots[order], t[order], x[order]


def state_bytes(sc: Scorer) -> dict[str, bytes]:
    return {k: v.tobytes() for k, v in sc.state.items()}


def assert_same_state(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and a[k].shape == b[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), k


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return interleave(4, 1500)


@pytest.fixture(params=SCORERS)
def name(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make(name: str) -> Callable[[], Scorer]:
    return lambda: create(name)


def test_registered_and_described(name: str) -> None:
    cls = all_scorers()[name]
    assert issubclass(cls, Scorer) and cls.name == name
    assert cls.__doc__ and ">>>" in cls.__doc__, "every scorer documents itself with a doctest"
    with pytest.raises(TypeError):
        create(name, no_such_parameter=1)


def test_scores_finite_nonnegative_and_not_trivial(make: Callable[[], Scorer], data) -> None:
    out = make().process(*data)
    assert out.shape == (len(data[0]),) and out.dtype == np.float64
    assert np.isfinite(out).all() and (out >= 0).all()
    assert (out > 0).mean() > 0.1, "a scorer that is warm must produce scores"
    assert len(np.unique(out)) > 100


def test_score_is_pure(make: Callable[[], Scorer], data) -> None:
    slots, t, x = data
    sc = make()
    h = len(x) // 2
    sc.process(slots[:h], t[:h], x[:h])
    before = state_bytes(sc)
    cap = sc.capacity
    s1 = sc.score(slots[h:], t[h:], x[h:])
    assert state_bytes(sc) == before and sc.capacity == cap
    s2 = sc.score(slots[h:], t[h:], x[h:])
    np.testing.assert_array_equal(s1, s2)


def test_process_is_score_then_learn_point_by_point(make: Callable[[], Scorer]) -> None:
    slots, t, x = interleave(3, 300, seed=1)
    a, b = make(), make()
    batch = a.process(slots, t, x)
    one = np.empty(len(x))
    for i in range(len(x)):
        p = (slots[i:i + 1], t[i:i + 1], x[i:i + 1])
        one[i] = b.score(*p)[0]
        b.learn(*p)
    np.testing.assert_array_equal(batch, one)
    assert_same_state(a.state, b.state)


@pytest.mark.parametrize("seed", [0, 1])
def test_batch_size_independent(make: Callable[[], Scorer], data, seed: int) -> None:
    slots, t, x = data
    whole = make().process(slots, t, x)
    rng = np.random.default_rng(seed)
    cuts = np.unique(np.r_[0, rng.integers(0, len(x), 40), len(x)])
    sc = make()
    parts = [sc.process(slots[a:b], t[a:b], x[a:b]) for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_warmup_scores_exactly_zero(make: Callable[[], Scorer], data) -> None:
    slots, t, x = data
    sc = make()
    out = sc.process(slots, t, x)
    w = sc.warmup
    for s in np.unique(slots):
        mine = out[(slots == s) & ~np.isnan(x)]
        assert (mine[:w] == 0.0).all(), f"stream {s}: non-zero score during the {w}-point warm-up"
        assert (mine[w:] > 0).any()


def test_nan_is_skipped(make: Callable[[], Scorer], data) -> None:
    slots, t, x = data
    with_nan = make()
    out = with_nan.process(slots, t, x)
    nan = np.isnan(x)
    assert nan.any() and (out[nan] == 0.0).all()
    without = make()
    out2 = without.process(slots[~nan], t[~nan], x[~nan])
    np.testing.assert_array_equal(out[~nan], out2)
    assert_same_state(with_nan.state, without.state)


def test_state_dict_round_trip(make: Callable[[], Scorer], data) -> None:
    slots, t, x = data
    h = len(x) // 3
    a = make()
    a.process(slots[:h], t[:h], x[:h])
    d = a.state_dict()
    b = make()
    b.load_state_dict(d)
    assert_same_state({k: v[: a.capacity] for k, v in a.state.items()},
                      {k: v[: a.capacity] for k, v in b.state.items()})
    ra = a.process(slots[h:], t[h:], x[h:])
    rb = b.process(slots[h:], t[h:], x[h:])
    np.testing.assert_array_equal(ra, rb)
    # the saved dict is a copy: learning afterwards does not change it
    again = make()
    again.load_state_dict(d)
    np.testing.assert_array_equal(again.process(slots[h:], t[h:], x[h:]), rb)


def test_load_state_dict_rejects_missing_arrays(make: Callable[[], Scorer]) -> None:
    sc = make()
    d = sc.state_dict()
    d.pop(next(iter(d)))
    with pytest.raises(ValueError, match="missing"):
        make().load_state_dict(d)


def test_deterministic(make: Callable[[], Scorer], data) -> None:
    np.testing.assert_array_equal(make().process(*data), make().process(*data))


def test_bounded_state(make: Callable[[], Scorer]) -> None:
    sc = make()
    per = sc.state_bytes_per_stream()
    assert 0 < per <= 4096
    slots, t, x = interleave(2, 500, seed=2)
    sc.process(slots, t, x)
    sc.process(slots + 998, t, x)  # 1,000 streams
    assert sc.capacity >= 1000
    assert sc.state_bytes_per_stream() == per
    actual = sum(v.nbytes for v in sc.state.values()) / sc.capacity
    assert actual == per
    before = state_bytes(sc)
    sc.process(slots, t + 10**15, x)  # more data on the same streams: the state does not grow
    assert {k: len(v) for k, v in state_bytes(sc).items()} == {k: len(v) for k, v in before.items()}


def test_streams_are_independent(make: Callable[[], Scorer]) -> None:
    n_streams, n = 3, 600
    slots, t, x = interleave(n_streams, n, seed=3)
    mixed = make().process(slots, t, x)
    for k in range(n_streams):
        tk, xk = stream(k, n, seed=3)
        alone = make().process(np.zeros(n, dtype=np.int64), tk, xk)
        np.testing.assert_array_equal(mixed[slots == k], alone)
    # slot numbers do not matter either
    far = make().process(slots * 37 + 5, t, x)
    np.testing.assert_array_equal(far, mixed)


def test_event_time_only(make: Callable[[], Scorer], data, monkeypatch: pytest.MonkeyPatch) -> None:
    expected = make().process(*data)

    def no_clock(*_a, **_k):
        raise AssertionError("a scorer read the wall clock")

    class NoClockDatetime(_dt.datetime):
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206
            no_clock()

        @classmethod
        def utcnow(cls):  # noqa: ANN206
            no_clock()

    for fn in ("time", "time_ns", "monotonic", "monotonic_ns", "localtime", "gmtime"):
        monkeypatch.setattr(time, fn, no_clock)
    monkeypatch.setattr(_dt, "datetime", NoClockDatetime)
    sc = make()
    np.testing.assert_array_equal(sc.process(*data), expected)
    sc2 = make()
    sc2.learn(*data)
    sc2.score(*data)


# --------------------------------------------------------------------------- the checks can fail


class _Impure(EWZ):
    """Learns while scoring."""

    def _kernel(self, slots, t, x, out, do_score, do_learn):  # noqa: ANN001
        super()._kernel(slots, t, x, out, do_score, True)


class _WarmupLeak(EWZ):
    """Claims a longer warm-up than its kernel uses."""

    @property
    def warmup(self) -> int:
        return int(self.p["warmup"]) + 5


class _BatchDependent(EWZ):
    """Scores depend on where the batch starts."""

    def _kernel(self, slots, t, x, out, do_score, do_learn):  # noqa: ANN001
        super()._kernel(slots, t, x, out, do_score, do_learn)
        if do_score and len(out):
            out[0] *= 1.5


class _WallClock(EWZ):
    def _kernel(self, slots, t, x, out, do_score, do_learn):  # noqa: ANN001
        time.time()
        super()._kernel(slots, t, x, out, do_score, do_learn)


class _SharedState(EWZ):
    """Keys its state by slot modulo 2, so streams leak into each other."""

    def _kernel(self, slots, t, x, out, do_score, do_learn):  # noqa: ANN001
        super()._kernel(slots % 2, t, x, out, do_score, do_learn)


@pytest.mark.parametrize(("broken", "check"), [
    (_Impure, test_score_is_pure),
    (_Impure, test_process_is_score_then_learn_point_by_point),
    (_WarmupLeak, test_warmup_scores_exactly_zero),
    (_BatchDependent, test_batch_size_independent),
    (_WallClock, test_event_time_only),
    (_SharedState, test_streams_are_independent),
])
def test_checks_catch_broken_scorers(broken: type[Scorer], check: Callable, data, monkeypatch: pytest.MonkeyPatch) -> None:
    kwargs: dict = {"make": broken}
    params = check.__code__.co_varnames[: check.__code__.co_argcount]
    if "data" in params:
        kwargs["data"] = data
    if "seed" in params:
        kwargs["seed"] = 0
    if "monkeypatch" in params:
        kwargs["monkeypatch"] = monkeypatch
    with pytest.raises(AssertionError):
        check(**kwargs)
