"""Where the topology file, the DuckDB store and the Dagster instance are: one rule for every entry point.

The Dagster UI (assets.definitions), `xts sync`, `xts approve`, `xts release`, `xts log`,
`xts status`, `xts provision` and `make demo` all call `resolve()`, so an approval typed in one shell
lands in the store the next sync reads. The rule:

- topology: `--config`, else `$XTS_CONFIG`, else the packaged demo topology;
- DuckDB file: `$XTS_DUCKDB`, else the topology's `storage.duckdb_path`, else `$XTS_HOME/xts.duckdb`,
  else `xts.duckdb` next to the topology file, else (packaged demo) `$DAGSTER_HOME/xts.duckdb`;
- Dagster instance: `$DAGSTER_HOME`, else `<repo>/dagster_home`.

`cli_args()` and `shell_command()` turn that back into what a printed command must carry
(`--config` when one is in use), quoted so it pastes into a POSIX shell as it is.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_ENV = "XTS_CONFIG"
DUCKDB_ENV = "XTS_DUCKDB"
SANDBOX_ENV = "XTS_SANDBOX"
REPO_ROOT = Path(__file__).resolve().parents[1]
# The code location's name in workspace.yaml; CLI runs carry it in their origin so the UI can re-execute them.
LOCATION_NAME = "xts_pipeline"
DEFINITIONS_MODULE = "assets.definitions"


@dataclass(frozen=True)
class Paths:
    """The resolved topology file and store, and where the topology choice came from."""

    config: Path
    duckdb: Path
    origin: str  # "--config", "$XTS_CONFIG" or "packaged demo"
    sandbox: Path | None = None

    @property
    def is_demo(self) -> bool:
        return self.origin == "packaged demo"

    def cli_args(self) -> list[str]:
        """Arguments a printed command needs to reach this same topology and store."""
        return [] if self.is_demo else ["--config", display_path(self.config)]

    def env(self) -> dict[str, str]:
        """Environment that makes every other entry point (the UI, worker processes) resolve the same."""
        out = {CONFIG_ENV: str(self.config)}
        if os.environ.get(DUCKDB_ENV):
            out[DUCKDB_ENV] = str(self.duckdb)
        if self.sandbox:
            out[SANDBOX_ENV] = str(self.sandbox)
        return out


def display_path(path: Path) -> str:
    """A path relative to the working directory when it is below it (shorter to paste), else absolute."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def default_config() -> Path:
    from xts_pipeline.config import default_config_path

    return default_config_path().resolve()


def config_path(cli_value: str | os.PathLike[str] | None = None, *, allow_demo: bool = True) -> tuple[Path, str]:
    """(topology file, origin). Raises ConfigError for a missing file, naming where the path came from."""
    from xts_pipeline.config import resolve_config_path

    if cli_value or os.environ.get(CONFIG_ENV):
        path = resolve_config_path(cli_value).resolve()
        origin = "--config" if cli_value else f"${CONFIG_ENV}"
        if path == default_config():
            return path, "packaged demo"
        return path, origin
    if not allow_demo:
        resolve_config_path(None)  # raises the "no topology file given" ConfigError
    return default_config(), "packaged demo"


def duckdb_path(topology: Any) -> Path:
    """The store of `topology` by the module's rule (an explicit $XTS_DUCKDB wins)."""
    if os.environ.get(DUCKDB_ENV):
        return Path(os.environ[DUCKDB_ENV]).expanduser().absolute()
    return Path(topology.duckdb_path).expanduser().absolute()


def resolve(cli_config: str | os.PathLike[str] | None = None, sandbox: str | os.PathLike[str] | None = None,
            *, allow_demo: bool = True) -> tuple[Paths, Any]:
    """(Paths, loaded topology) for an entry point; the topology carries the sandbox overlay when given.

    Only the caller passes `sandbox` (the UI from $XTS_SANDBOX, `xts sync --sandbox`): approve, release,
    log and status never need Graph, so a stale sandbox never stops them.
    """
    from xts_pipeline.config import load_config
    from xts_pipeline.config.sandbox_overlay import apply_sandbox

    config, origin = config_path(cli_config, allow_demo=allow_demo)
    sandbox_dir = Path(sandbox).expanduser().absolute() if sandbox else None
    topology = load_config(config)
    if sandbox_dir:
        topology = apply_sandbox(topology, str(sandbox_dir))
    return Paths(config=config, duckdb=duckdb_path(topology), origin=origin, sandbox=sandbox_dir), topology


@contextmanager
def exported(env: dict[str, str]) -> Iterator[None]:
    """`env` in os.environ for the duration (worker processes and the definitions module read it), then restored."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def dagster_home() -> Path:
    """$DAGSTER_HOME, else <repo>/dagster_home (absolute, as Dagster requires), created and exported."""
    home = Path(os.environ.get("DAGSTER_HOME") or REPO_ROOT / "dagster_home").expanduser().absolute()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def pair_arg(source: str, target: str) -> str:
    """A pair as a command argument: SRC->DST, quoted by shell_command (`>` is a shell redirect)."""
    return f"{source}->{target}"


def shell_command(*argv: str) -> str:
    """`argv` joined for a POSIX shell: every argument that needs it is single-quoted."""
    return " ".join(shlex.quote(str(a)) for a in argv)


def config_args(config_path: str | os.PathLike[str] | None) -> list[str]:
    """`--config PATH` unless the topology is the packaged demo (which every command finds by default)."""
    if not config_path or Path(config_path).resolve() == default_config():
        return []
    return ["--config", str(Path(config_path).resolve())]


def release_command(pair_name: str, args: Sequence[str] = ()) -> str:
    """The paste-safe `xts release` of a quarantined pair; `args` from config_args."""
    return shell_command("xts", "release", *args, "--pair", pair_name)


def xts_command(paths: Paths | None, sub: str, *args: str) -> str:
    """A complete, paste-safe `xts` command: the subcommand, `--config` when in use, then `args`."""
    extra = paths.cli_args() if paths else []
    return shell_command("xts", sub, *extra, *args)
