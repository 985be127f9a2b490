"""Errors raised while reading datasets and looking up items."""

from __future__ import annotations


class DataError(ValueError):
    """A dataset problem: a missing file or column, or a bad row. The message names them."""

    def __str__(self) -> str:
        # UnknownItemError also derives from KeyError, whose __str__ would quote the message.
        return str(self.args[0]) if len(self.args) == 1 else super().__str__()


class UnknownItemError(DataError, KeyError):
    """An item id that is not in the catalogue."""


class UnknownUserError(DataError, KeyError):
    """A user id that is not in the dataset."""
