"""What every config section shares: unknown keys are errors; an options class's error names
its key."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError


class Strict(BaseModel):
    """Base for all config sections: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def option_error(prefix: str, e: ValidationError) -> ValueError:
    """An options class's first validation error as `prefix.key: message` (the config loader
    prepends the section, e.g. `translate.options.batch_size: ...`)."""
    err = e.errors()[0]
    return ValueError(f"{prefix}.{'.'.join(map(str, err['loc']))}: {err['msg']}")
