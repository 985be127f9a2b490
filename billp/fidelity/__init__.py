"""World fidelity: is each simulated world a trustworthy instrument? ``python -m billp.le
evaluate`` measures an LE checkpoint and the matrix world on test users' held-out data.

Modules: :mod:`.models` (ranking, rating and reward-bias metrics of the user models),
:mod:`.replay` (real held-out sequences replayed through each world), :mod:`.agreement`
(policy order in both worlds, Kendall's tau), :mod:`.report` (``fidelity.json`` and
``fidelity.md``) and :mod:`.checkpoint` (all of it for one checkpoint).
"""
