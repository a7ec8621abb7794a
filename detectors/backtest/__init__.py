"""Offline backtests: the detector pipeline over a recording, in event time, with metrics and a report.

* :mod:`.columns`: :class:`~.columns.FrameBuilder` / :func:`~.columns.frame_from_columns`,
  detector frames straight from columnar arrays;
* :mod:`.run`: :func:`~.run.run_pipeline` (reading-aligned big batches),
  :func:`~.run.series_pipeline` for bare series;
* :mod:`.labels`: simulator labels, NAB windows, a recording's own labels;
* :mod:`.metrics`: :func:`~.metrics.evaluate` (event-level precision, recall,
  F1, delay, false alarms per sensor-day) and :func:`~.metrics.nab_scores`;
* :mod:`.report`: the self-contained HTML report (inline SVG);
* :mod:`.sweep`: ``--set section.detector.param=a,b,c`` sweeps;
* :mod:`.cli`: ``lifewatch backtest`` (``cli(args, settings)``, ``add_arguments(p)``).

The recording itself is read by :mod:`ingest.readers` (imported by the CLI
only: this package's modules take any object with its ``Columns`` attributes).
"""
