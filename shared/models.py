"""Base pydantic model for every boundary: strict about shape, silent about values."""

from pydantic import BaseModel, ConfigDict


class BoundaryModel(BaseModel):
    """A model at a system boundary; its validation errors never echo the input (it may carry a CPR)."""

    model_config = ConfigDict(hide_input_in_errors=True, extra="forbid", frozen=True)
