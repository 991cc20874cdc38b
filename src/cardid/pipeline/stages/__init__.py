"""Every stage kind a recipe can name, registered on import (one module per family)."""

from cardid.pipeline.stages import data, deploy, evaluate, train  # noqa: F401
