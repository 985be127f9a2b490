"""The LLM-fine-tuned environment (LE) after Wang et al. (SIGIR'24).

A small causal LM reads a user's history as item tokens (one learned token per catalogue item)
and gives two things: the state vector s_t (a projection of the last hidden state) and the
reward of a candidate item (a score head psi over history + candidate token, calibrated onto the
1..5 rating scale). :class:`LEUserModel` plugs it into the simulator as a ``UserModel``.
"""

from __future__ import annotations
