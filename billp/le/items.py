"""Item tokens: one new token per catalogue item, and the text each one learns to generate.

Item tokens extend the base vocabulary virtually: token id ``vocab_size + item_id`` stands for
the item. Their embeddings live in the LE (not in a resized embedding matrix), so the base model's
files, its tied output head and its saved adapters never grow with the catalogue.
"""

from __future__ import annotations

from typing import Any

import torch

from billp.data.catalogue import Catalogue, Item
from billp.le.errors import LEError

NO_GENRES = "none"
TEMPLATE_FIELDS = ("label", "title", "year", "genres")


def item_text(item: Item, template: str) -> str:
    """The text that follows an item's token in the item-token stage.

    Raises:
        LEError: the template names an unknown field.
    """
    try:
        return template.format(
            label=item.label,
            title=item.title,
            year="" if item.year is None else item.year,
            genres=", ".join(item.genres) if item.genres else NO_GENRES,
        )
    except (KeyError, IndexError, ValueError) as exc:
        raise LEError(
            f"train.item_text_template {template!r} is invalid ({exc!r}); it may use "
            f"{', '.join('{' + f + '}' for f in TEMPLATE_FIELDS)}"
        ) from None


def encode(tokenizer: Any, text: str) -> list[int]:
    """Token ids of ``text`` without special tokens."""
    return [int(t) for t in tokenizer(text, add_special_tokens=False)["input_ids"]]


def title_mean_embeddings(
    catalogue: Catalogue, tokenizer: Any, embedding: torch.Tensor
) -> torch.Tensor:
    """Per item, the mean of its title's token embeddings (float32 ``[n_items, hidden]``).

    An item whose title encodes to no tokens starts from the mean of all token embeddings.
    """
    weight = embedding.detach().float()
    fallback = weight.mean(dim=0)
    rows = []
    for item in catalogue:
        ids = encode(tokenizer, item.title)
        rows.append(weight[ids].mean(dim=0) if ids else fallback)
    return torch.stack(rows)


def item_text_ids(catalogue: Catalogue, tokenizer: Any, template: str) -> list[list[int]]:
    """Token ids of every item's text (after its item token).

    Raises:
        LEError: an item's text encodes to no tokens.
    """
    texts = []
    for item in catalogue:
        ids = encode(tokenizer, item_text(item, template))
        if not ids:
            raise LEError(f"item {item.item_id} ({item.title!r}) has an empty item text")
        texts.append(ids)
    return texts
