"""The results pipeline behind ``python eval/reproduce.py``.

One home per concept:

* :mod:`.specs`: the targets (``eval/targets.toml``): each results file's command, steps,
  JSON and markdown, the fingerprint parts it depends on, its goals;
* :mod:`.fingerprint`: digests of the tracked files that decide what agents and worlds do
  (git blob ids of their contents, so a clean clone gives the same digests);
* :mod:`.provenance`: the block every results JSON carries (command, commit, dirty flag, UTC
  date, CPU model, cores, SIMD flags, wall time, model, knowledge, users, fingerprint), the
  markdown header made from it, and the atomic write of a JSON and its markdown, the
  markdown rendered from the JSON alone;
* :mod:`.verdict`: "met", "missed" or "not distinguishable" from a goal and an interval;
* :mod:`.status`: fresh / stale (which parts) / missing / no provenance / no JSON yet;
* :mod:`.readme`: README's results table between its markers;
* :mod:`.runner`: a target's steps, resumable from its work folder.

Results scripts import it as ``pipeline`` (``eval/`` is on ``sys.path`` when they run).
"""
