"""Where the packaged demo topology lives (the loader's default, the topology's store rule both ask)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def default_config_path() -> Path:
    """The demo merger topology shipped inside the package."""
    return Path(str(resources.files("xts_pipeline").joinpath("demo", "topology.yaml")))
