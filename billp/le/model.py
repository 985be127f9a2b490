"""The LE network: a frozen causal LM with item tokens, LoRA adapters, a state and a score head.

* ``item_embeddings``: one row per catalogue item (token id ``vocab_size + item``), float32.
* ``state_head``: a linear projection of the last hidden state into the token-embedding space;
  the state s_t is its unit-length output. It starts as the identity: with a tied output head
  the last hidden state already scores tokens by a dot product with their embeddings.
* ``score_head`` (psi): a linear map of the candidate token's last hidden state to a score:
  how likely the user is to pick the candidate next (the ranking side of the LE).
* the rating side: ``rating_embeddings`` add the user's rating of the *previous* item to each
  item token (slot 0: unknown), so no position sees its own rating; the predicted rating of a
  candidate is ``rating_mean + item_bias[item] + history_weight * offset + rating_head(h)``,
  where ``offset`` is the user's shrunk mean rating residual over their rated history (see
  :func:`~billp.le.ratings.history_offset`).

Three ways to score candidates for one history, all equal up to float rounding:
one forward per candidate, one batched forward, and the shared prefix (the history is run
once, its key/value cache is expanded over the candidates, which then cost one token each).
And one way to score one candidate after each of many histories: :meth:`LEModel.score_windows`
(one right-padded forward pass over the windows, after the prompt's cached keys and values).

Inference follows the model's device (:attr:`LEModel.device`); results come back on the CPU
only where a method says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from billp.le.errors import LEError
from billp.le.model_outputs import PromptCache, SharedPrefixScores, WindowScores
from billp.le.packing import PackedBatch, pad_windows
from billp.le.ratings import (
    RATING_SLOTS,
)

__all__ = [
    "LORA_ADAPTER",
    "SCORE_HEAD_INIT_STD",
    "LEModel",
]

LORA_ADAPTER = "default"
SCORE_HEAD_INIT_STD = 0.01


class LEModel(nn.Module):
    """Item tokens + adapters + heads around a frozen base causal LM."""

    def __init__(self, base: Any, n_items: int) -> None:
        super().__init__()
        if n_items < 1:
            raise LEError(f"the LE needs at least one item, got n_items={n_items}")
        self.base = base
        embedding = base.get_input_embeddings()
        self.vocab_size = int(embedding.num_embeddings)
        self.hidden_size = int(base.config.hidden_size)
        self.n_items = n_items
        self.item_embeddings = nn.Parameter(torch.zeros(n_items, self.hidden_size))
        self.state_head = nn.Linear(self.hidden_size, self.hidden_size)
        self.score_head = nn.Linear(self.hidden_size, 1)
        self.rating_embeddings = nn.Embedding(RATING_SLOTS, self.hidden_size)
        self.rating_head = nn.Linear(self.hidden_size, 1)
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.history_weight = nn.Parameter(torch.tensor(1.0))
        self.register_buffer("rating_mean", torch.tensor(3.5))
        with torch.no_grad():
            self.rating_embeddings.weight.zero_()
            self.rating_head.weight.normal_(0.0, SCORE_HEAD_INIT_STD)
            self.rating_head.bias.zero_()
            self.state_head.weight.copy_(torch.eye(self.hidden_size))
            self.state_head.bias.zero_()
            self.score_head.weight.normal_(0.0, SCORE_HEAD_INIT_STD)
            self.score_head.bias.zero_()

    @property
    def dtype(self) -> torch.dtype:
        """dtype of the base model's weights."""
        return self.base.get_input_embeddings().weight.dtype

    @property
    def device(self) -> torch.device:
        """Where the model's weights live (inference tensors are created there)."""
        return self.item_embeddings.device

    @property
    def decoder(self) -> Any:
        return self.base.get_decoder()

    def add_lora(self, rank: int, alpha: int, targets: Sequence[str]) -> None:
        """Inject LoRA adapters (float32, trainable) into the base model's ``targets``."""
        from peft import LoraConfig, inject_adapter_in_model

        config = LoraConfig(
            r=rank, lora_alpha=alpha, target_modules=list(targets), lora_dropout=0.0, bias="none"
        )
        try:
            inject_adapter_in_model(config, self.base, adapter_name=LORA_ADAPTER)
        except ValueError as exc:
            raise LEError(f"cannot add LoRA adapters to {list(targets)}: {exc}") from exc
        for name, parameter in self.base.named_parameters():
            if "lora_" in name:
                parameter.data = parameter.data.float()
                parameter.requires_grad_(True)

    def lora_state_dict(self) -> dict[str, torch.Tensor]:
        """The adapters' weights only (never the base model's embedding or head)."""
        from peft import get_peft_model_state_dict

        state = get_peft_model_state_dict(
            self.base, adapter_name=LORA_ADAPTER, save_embedding_layers=False
        )
        return {name: tensor.detach().float().contiguous() for name, tensor in state.items()}

    def load_lora_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Set the adapters' weights (the adapters must have been added with the same shape).

        Raises:
            LEError: a tensor is missing, unexpected or has the wrong shape.
        """
        own = self.lora_state_dict()
        if set(own) != set(state):
            missing, extra = sorted(set(own) - set(state)), sorted(set(state) - set(own))
            raise LEError(f"adapter tensors differ: missing {missing[:3]}, unexpected {extra[:3]}")
        for name, tensor in state.items():
            if tuple(tensor.shape) != tuple(own[name].shape):
                raise LEError(
                    f"adapter tensor {name} has shape {tuple(tensor.shape)}, "
                    f"expected {tuple(own[name].shape)}"
                )
        from peft import set_peft_model_state_dict

        set_peft_model_state_dict(self.base, state, adapter_name=LORA_ADAPTER)

    # -- embedding and hidden states -------------------------------------------------------

    def embed(self, ids: torch.Tensor, slots: torch.Tensor | None = None) -> torch.Tensor:
        """Input embeddings of token ids; ids >= vocab_size are item tokens, to which the
        rating embedding of ``slots`` (same shape as ``ids``; None: all unknown) is added."""
        is_item = ids >= self.vocab_size
        tokens = self.base.get_input_embeddings()(torch.where(is_item, 0, ids))
        if not bool(is_item.any()):
            return tokens
        items = F.embedding(ids[is_item] - self.vocab_size, self.item_embeddings, sparse=True)
        if slots is None:
            slots = torch.zeros_like(ids)
        items = items + self.rating_embeddings(slots[is_item])
        mixed = tokens.clone()
        mixed[is_item] = items.to(tokens.dtype)
        return mixed

    def hidden(self, batch: PackedBatch) -> torch.Tensor:
        """Last hidden states of a packed batch, flattened to ``[B * L, hidden]`` (model dtype)."""
        device = self.device
        output = self.decoder(
            inputs_embeds=self.embed(batch.ids.to(device), batch.slots.to(device)),
            attention_mask=batch.additive_mask(self.dtype).to(device),
            position_ids=batch.positions.to(device),
            use_cache=False,
        )
        states: torch.Tensor = output.last_hidden_state
        return states.reshape(-1, self.hidden_size)

    def psi(self, hidden: torch.Tensor) -> torch.Tensor:
        """Raw reward scores psi of candidate hidden states ``[n, hidden]`` -> ``[n]``."""
        scores: torch.Tensor = self.score_head(hidden.float()).squeeze(-1)
        return scores

    def rating(
        self, hidden: torch.Tensor, items: torch.Tensor, offsets: torch.Tensor
    ) -> torch.Tensor:
        """Predicted (uncalibrated) ratings of candidates: hidden ``[n, hidden]``, item ids
        ``[n]`` and the users' history offsets ``[n]`` -> ``[n]``."""
        head: torch.Tensor = self.rating_head(hidden.float()).squeeze(-1)
        return self.rating_mean + self.item_bias[items] + self.history_weight * offsets + head

    def state(self, hidden: torch.Tensor) -> torch.Tensor:
        """Unit-length state vectors of hidden states ``[n, hidden]`` -> ``[n, hidden]``."""
        return F.normalize(self.state_head(hidden.float()), dim=-1)

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        """Unit-length item-token embeddings of ``items`` (L_sm's targets)."""
        return F.normalize(F.embedding(items, self.item_embeddings, sparse=True), dim=-1)

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits over the base vocabulary of 2-D hidden rows, through the frozen output head."""
        weight = self.base.get_output_embeddings().weight
        return (hidden.to(weight.dtype) @ weight.T).float()

    # -- inference: three ways to score candidates after one history ----------------------

    def _forward_embeds(
        self, embeds: torch.Tensor, positions: torch.Tensor, cache: Any = None
    ) -> Any:
        return self.decoder(
            inputs_embeds=embeds,
            position_ids=positions,
            past_key_values=cache,
            use_cache=cache is not None,
        )

    @torch.inference_mode()
    def score_one_at_a_time(self, prefix: Sequence[int], candidates: Sequence[int]) -> torch.Tensor:
        """psi of each candidate token after ``prefix``, one forward pass per candidate."""
        scores = []
        for candidate in candidates:
            ids = torch.as_tensor([[*prefix, candidate]], dtype=torch.int64, device=self.device)
            positions = torch.arange(ids.shape[1], device=self.device).unsqueeze(0)
            hidden = self._forward_embeds(self.embed(ids), positions).last_hidden_state
            scores.append(self.psi(hidden[:, -1]))
        return torch.cat(scores)

    @torch.inference_mode()
    def score_batched(self, prefix: Sequence[int], candidates: Sequence[int]) -> torch.Tensor:
        """psi of each candidate token after ``prefix``: one forward over ``C`` full sequences."""
        ids = torch.as_tensor(
            [[*prefix, c] for c in candidates], dtype=torch.int64, device=self.device
        )
        positions = torch.arange(ids.shape[1], device=self.device).expand_as(ids)
        hidden = self._forward_embeds(self.embed(ids), positions).last_hidden_state
        return self.psi(hidden[:, -1])

    @torch.inference_mode()
    def score_shared_prefix(
        self,
        prefix: Sequence[int],
        candidates: Sequence[int],
        chunk: int,
        prefix_slots: Sequence[int] | None = None,
        offset: float = 0.0,
    ) -> SharedPrefixScores:
        """Run ``prefix`` once, then every candidate as one token over its expanded KV cache.

        Args:
            prefix: prompt + item token ids.
            candidates: candidate item token ids.
            chunk: candidates per forward pass.
            prefix_slots: the rating slot of each prefix token, then the candidates' slot (the
                rating of the prefix's last item): ``len(prefix) + 1`` values; None: unknown.
            offset: the user's history offset (:func:`history_offset`) for the rating.
        """
        from transformers.cache_utils import DynamicCache

        if not prefix:
            raise LEError("the shared-prefix scorer needs a non-empty prefix")
        device = self.device
        ids = torch.as_tensor([list(prefix)], dtype=torch.int64, device=device)
        slots_list = list(prefix_slots) if prefix_slots is not None else [0] * (len(prefix) + 1)
        if len(slots_list) != len(prefix) + 1:
            raise LEError(
                f"prefix_slots needs one slot per prefix token plus the candidates' slot "
                f"({len(prefix) + 1}), got {len(slots_list)}"
            )
        slots = torch.as_tensor([slots_list[:-1]], dtype=torch.int64, device=device)
        positions = torch.arange(ids.shape[1], device=device).unsqueeze(0)
        output = self._forward_embeds(self.embed(ids, slots), positions, cache=DynamicCache())
        prefix_state = self.state(output.last_hidden_state[0, -1:])[0]
        layers = [(layer.keys, layer.values) for layer in output.past_key_values.layers]
        all_scores, all_ratings, all_states = [], [], []
        tokens = torch.as_tensor(list(candidates), dtype=torch.int64, device=device)
        for start in range(0, len(tokens), chunk):
            part = tokens[start : start + chunk].unsqueeze(1)
            size = part.shape[0]
            cache = DynamicCache(
                ddp_cache_data=[
                    (k.expand(size, -1, -1, -1), v.expand(size, -1, -1, -1)) for k, v in layers
                ]
            )
            where = torch.full((size, 1), ids.shape[1], dtype=torch.int64, device=device)
            part_slots = torch.full_like(part, slots_list[-1])
            hidden = self._forward_embeds(
                self.embed(part, part_slots), where, cache=cache
            ).last_hidden_state[:, -1]
            all_scores.append(self.psi(hidden))
            all_ratings.append(
                self.rating(
                    hidden,
                    part[:, 0] - self.vocab_size,
                    torch.full((size,), offset, device=device),
                )
            )
            all_states.append(self.state(hidden))
        if not all_scores:
            empty = torch.zeros(0, device=device)
            return SharedPrefixScores(
                empty, empty.clone(), torch.zeros(0, self.hidden_size, device=device), prefix_state
            )
        return SharedPrefixScores(
            torch.cat(all_scores), torch.cat(all_ratings), torch.cat(all_states), prefix_state
        )

    @torch.inference_mode()
    def state_of(self, sequence: Sequence[int], slots: Sequence[int] | None = None) -> torch.Tensor:
        """The state after ``sequence`` (prompt + item tokens) ``[hidden]``; ``slots``: the rating
        slot of each token (None: all unknown)."""
        device = self.device
        ids = torch.as_tensor([list(sequence)], dtype=torch.int64, device=device)
        slot_ids = (
            None
            if slots is None
            else torch.as_tensor([list(slots)], dtype=torch.int64, device=device)
        )
        positions = torch.arange(ids.shape[1], device=device).unsqueeze(0)
        hidden = self._forward_embeds(self.embed(ids, slot_ids), positions).last_hidden_state
        return self.state(hidden[0, -1:])[0]

    # -- inference: one candidate after each of many histories ----------------------------

    @torch.inference_mode()
    def prompt_cache(self, prompt: Sequence[int]) -> PromptCache:
        """The keys and values of ``prompt`` (token ids), to share across windows."""
        from transformers.cache_utils import DynamicCache

        if not prompt:
            return PromptCache([], 0)
        ids = torch.as_tensor([list(prompt)], dtype=torch.int64, device=self.device)
        positions = torch.arange(ids.shape[1], device=self.device).unsqueeze(0)
        output = self._forward_embeds(self.embed(ids), positions, cache=DynamicCache())
        layers = [(layer.keys, layer.values) for layer in output.past_key_values.layers]
        return PromptCache(layers, len(prompt))

    @torch.inference_mode()
    def score_windows(
        self,
        prompt: PromptCache,
        windows: Sequence[Sequence[int]],
        slots: Sequence[Sequence[int]],
        offsets: Sequence[float],
    ) -> WindowScores:
        """Score the last token of each window after the prompt and the window's other tokens,
        in one forward pass (windows right-padded, each attending to the prompt and causally to
        itself).

        Args:
            prompt: the prompt's cache (:meth:`prompt_cache`), shared by every window.
            windows: per window, item token ids (oldest first, at least one).
            slots: per window, the rating slot of each of its tokens.
            offsets: per window, the user's history offset (:func:`history_offset`).

        Raises:
            LEError: no windows, an empty window, or slots/offsets that do not match.
        """
        from transformers.cache_utils import DynamicCache

        if not windows:
            raise LEError("score_windows needs at least one window")
        if len(slots) != len(windows) or len(offsets) != len(windows):
            raise LEError(
                f"{len(windows)} windows need as many slot lists and offsets, got "
                f"{len(slots)} and {len(offsets)}"
            )
        padded = pad_windows(windows, slots, prompt.length)
        batch, device, length = len(windows), self.device, padded.lengths
        mask = torch.zeros(padded.allowed.shape, dtype=self.dtype)
        mask.masked_fill_(~padded.allowed, torch.finfo(self.dtype).min)
        cache = None
        if prompt.layers:
            cache = DynamicCache(
                ddp_cache_data=[
                    (k.expand(batch, -1, -1, -1), v.expand(batch, -1, -1, -1))
                    for k, v in prompt.layers
                ]
            )
        ids = padded.ids.to(device)
        output = self.decoder(
            inputs_embeds=self.embed(ids, padded.slots.to(device)),
            attention_mask=mask.unsqueeze(1).to(device),
            position_ids=padded.positions.to(device),
            past_key_values=cache,
            use_cache=cache is not None,
        )
        hidden = output.last_hidden_state
        rows = torch.arange(batch, device=device)
        last = (length - 1).to(device)
        final = hidden[rows, last]
        states = self.state(torch.cat([final, hidden[rows, (last - 1).clamp(min=0)]]))
        previous = states[batch:] * (last >= 1)[:, None]
        items = ids[rows, last] - self.vocab_size
        offset = torch.as_tensor(list(offsets), dtype=torch.float32, device=device)
        return WindowScores(
            psi=self.psi(final),
            rating=self.rating(final, items, offset),
            states=states[:batch],
            previous_states=previous,
        )
