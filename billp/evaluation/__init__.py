"""Metrics, comparisons, plots and reports computed from run directories alone (read through
:mod:`billp.records.read`).

Modules (nothing here imports the runner; the runner imports :mod:`.metrics`):

- :mod:`.metrics`: metric definitions on episodes (Len, R_each, R_traj, coverage,
  diversity, popularity, end reasons) as weighted statistics, and ``summary.json``;
- :mod:`.bootstrap`: seeded bootstrap (episodes, two-level over seeds, paired) and the
  paired permutation test;
- :mod:`.survival`: Kaplan-Meier survival of episode length (the cap censors);
- :mod:`.evaluate`: metrics with intervals for runs and groups of seeds;
- :mod:`.output`, :mod:`.plots`, :mod:`.compare`, :mod:`.report`: tables, JSON/CSV,
  PNG plots, paired run comparison, the static HTML report;
- :mod:`.cli`: ``python -m billp.eval``.

Kept light on purpose: importing this package imports neither matplotlib nor the data.
"""
