"""The base of every config section: strict keys, re-validated assignments, legacy sections."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from billp.config.legacy import LegacySection


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, assignments re-validate."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    legacy_sections: ClassVar[Mapping[str, LegacySection]] = {}
    """Dotted sections of older TOML files that a command's root tree still reads, with a
    warning: moved to their new place, or dropped when another command uses them."""
