"""``shoal`` — server, deploy, invoke, functions, logs."""

from __future__ import annotations

import argparse
import sys

from shoal.config import ConfigError, add_arguments, from_arguments


def _server(args: argparse.Namespace) -> int:
    from shoal.server import run

    try:
        config = from_arguments(args)
    except ConfigError as exc:
        print(f"shoal server: {exc}", file=sys.stderr)
        return 2
    from shoal.core.accounts import CredentialsFileError

    try:
        run(config)
    except CredentialsFileError as exc:
        print(f"shoal server: {exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="shoal", description="Self-hosted serverless compute, AWS Lambda at the wire."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    server = sub.add_parser("server", help="run the Shoal server")
    add_arguments(server)
    server.set_defaults(func=_server)
    import importlib

    try:  # the user commands live beside this module
        commands = importlib.import_module("shoal.cli.commands")
    except ModuleNotFoundError:
        commands = None
    if commands is not None:
        commands.register(sub)
    from shoal.cli import blueprints as blueprint_commands

    blueprint_commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
