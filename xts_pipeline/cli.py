"""The `xts` command line. Each subcommand imports its module lazily so `xts --help` stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys


def _dispatch(target: str):
    """Return a handler that imports `module:function` only when the subcommand runs."""

    def run(args: argparse.Namespace) -> int:
        module_name, func_name = target.split(":")
        return getattr(importlib.import_module(module_name), func_name)(args) or 0

    return run


# `xts sync`'s exit codes (its module, assets/sync_cli.py, sits in the Dagster layer above this one).
EXIT_CODES: dict[int, str] = {
    0: "every pair ran and wrote what it planned (held users and a dry run's plan are not failures)",
    1: "a pair is blocked, quarantined, failed writes, errored, or every in-scope user failed its mapping",
    2: "configuration problem: the topology file, a pair name, or a missing secret/certificate",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xts", description="Cross-tenant user sync for Entra ID.")
    sub = parser.add_subparsers(dest="command", required=True)

    sandbox = sub.add_parser("sandbox", help="the local Graph sandbox").add_subparsers(
        dest="sandbox_command", required=True
    )
    serve = sandbox.add_parser("serve", help="serve Graph v1.0 and Entra's token endpoint over HTTPS")
    serve.add_argument("--state", required=True, help="state directory (CA, data, sandbox.json)")
    serve.add_argument("--host", default="127.0.0.1", help="loopback address to bind")
    serve.add_argument("--port", type=int, default=0, help="0 picks a free port")
    serve.add_argument("--seed", default=None, help="'demo' or a seed YAML file, applied to an empty state")
    serve.add_argument("--throttle", choices=["documented", "off"], default="documented")
    serve.add_argument("--time-scale", type=float, default=1.0, help="sandbox clock speed-up")
    serve.add_argument("--faults", default=None, help="fault spec, see docs/sandbox.md")
    serve.add_argument("--fault-seed", type=int, default=0)
    serve.set_defaults(handler=_dispatch("xts_pipeline.sandbox.server:serve_command"))

    seed = sandbox.add_parser("seed", help="add a generated tenant to a sandbox state directory")
    seed.add_argument("--state", required=True)
    seed.add_argument("--tenant", required=True, help="tenant name")
    seed.add_argument("--users", type=int, required=True)
    seed.add_argument("--domain", default=None)
    seed.add_argument("--seed", type=int, default=0)
    seed.add_argument("--partners", default=None,
                      help="comma-separated tenants that allow sync with the new one, both ways (a merger)")
    seed.set_defaults(handler=_dispatch("xts_pipeline.sandbox.server:seed_command"))

    config_help = "topology YAML (default: $XTS_CONFIG, else the packaged demo); decides the store too"
    pair_help = "SRC->DST (quote it: '>' is a shell redirect) or SRC__DST"

    sync = sub.add_parser("sync", help="run one sync cycle through the Dagster jobs",
                          epilog="exit codes: " + "; ".join(f"{k} {v}" for k, v in EXIT_CODES.items()))
    sync.add_argument("--config", default=None, help="topology YAML (default: $XTS_CONFIG)")
    sync.add_argument("--sandbox", default=None, help="sandbox state dir: point every tenant at it")
    sync.add_argument("--pairs", default=None, help="comma-separated SRC->DST or SRC__DST pairs (default: all)")
    sync.add_argument("--dry-run", action="store_true", help="plan only; write nothing to Graph")
    sync.add_argument("--full", action="store_true",
                      help="re-diff every user of every pair, and run pairs whose inputs are unchanged too")
    sync.set_defaults(handler=_dispatch("assets.sync_cli:sync_command"))

    approve = sub.add_parser("approve", help="approve a blocked plan by its fingerprint")
    approve.add_argument("--config", default=None, help=config_help)
    approve.add_argument("--pair", required=True, help=pair_help)
    approve.add_argument("--plan", required=True, help="plan fingerprint shown by the failed check")
    approve.add_argument("--reason", required=True)
    approve.set_defaults(handler=_dispatch("xts_pipeline.guardrails.cli:approve_command"))

    release = sub.add_parser("release", help="lift a pair's quarantine")
    release.add_argument("--config", default=None, help=config_help)
    release.add_argument("--pair", required=True, help=pair_help)
    release.set_defaults(handler=_dispatch("xts_pipeline.guardrails.cli:release_command"))

    log = sub.add_parser("log", help="provisioning log, staging rejects and mapping errors from the store")
    log.add_argument("--config", default=None, help=config_help)
    log.add_argument("--pair", default=None, help=pair_help)
    log.add_argument("--user", default=None, help="source UPN (substring), source object id or target user id")
    log.add_argument("--action", default=None, help="create, update, disable, delete, restore, manager, ...")
    log.add_argument("--status", default=None, help="Success, Failure, Skipped, Warning, Rejected, Error")
    log.add_argument("--cycle", default=None, help="one cycle id (the run that planned it)")
    log.add_argument("--kind", default=None, help="comma-separated: provisioning,rejected,mapping_error (default all)")
    log.add_argument("--format", choices=["table", "csv", "json"], default="table")
    log.add_argument("--limit", type=int, default=200)
    log.set_defaults(handler=_dispatch("xts_pipeline.log_cli:log_command"))

    status = sub.add_parser("status", help="per pair: last cycle, counts, holds, blocks, quarantine, next retry")
    status.add_argument("--config", default=None, help=config_help)
    status.add_argument("--format", choices=["table", "csv", "json"], default="table")
    status.set_defaults(handler=_dispatch("xts_pipeline.log_cli:status_command"))

    provision = sub.add_parser("provision", help="on-demand provisioning of one user, with Entra's steps")
    provision.add_argument("--config", default=None, help=config_help)
    provision.add_argument("--sandbox", default=None, help="sandbox state dir: point every tenant at it")
    provision.add_argument("--pair", required=True, help=pair_help)
    provision.add_argument("--user", required=True, help="the source user's UPN, object id or mail")
    provision.set_defaults(handler=_dispatch("assets.provision_cli:provision_command"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
