"""``shoal blueprints`` and ``shoal init``: starter functions to deploy with ``shoal deploy``.

``shoal blueprints`` lists them; ``shoal init --blueprint NAME DIR`` writes one into DIR (an empty or new
directory, or any with ``--force``), compiles it when it is Java and a ``javac`` is at hand, and prints the
``shoal deploy`` and ``shoal invoke`` commands to run next. Neither command talks to a server.
Failures are one line on stderr and exit code 2, as for the other commands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shoal import blueprints as bp


def _fail(message: str) -> int:
    print("shoal: " + " ".join(message.split()), file=sys.stderr)
    return 2


def cmd_blueprints(args: argparse.Namespace) -> int:
    rows = [(b.name, b.runtime, b.description) for b in bp.catalogue()]
    header = ("NAME", "RUNTIME", "DESCRIPTION")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(2)]
    for name, runtime, description in [header, *rows]:
        print(f"{name.ljust(widths[0])}  {runtime.ljust(widths[1])}  {description}".rstrip())
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    try:
        blueprint = bp.get(args.blueprint)
    except bp.BlueprintError as exc:
        return _fail(str(exc))
    if args.name is not None and not bp.valid_function_name(args.name):
        return _fail(f"--name {args.name!r}: a function name is 1-64 letters, digits, hyphens or underscores")
    target = Path(args.dir if args.dir is not None else blueprint.name)
    name = args.name or bp.default_function_name(blueprint, target)
    try:
        written = bp.write(blueprint, target, force=args.force)
        built = bp.build(blueprint, target, run=not args.no_build)
    except bp.BlueprintError as exc:
        return _fail(str(exc))
    except OSError as exc:
        return _fail(f"cannot write {exc.filename or target}: {exc.strerror or exc}")

    print(f"Wrote blueprint {blueprint.name} ({blueprint.runtime}) into {target}:")
    for path in written:
        print(f"  {path.relative_to(target).as_posix()}")
    steps: list[str] = []
    if built is not None:
        if built.built:
            print(built.message[:1].upper() + built.message[1:] + ".")
        else:
            print(f"Not built: {built.message}.")
            steps.append(f"(cd {bp.shell_line([str(target)])} && {bp.shell_line(built.command)})")
    steps.append(bp.shell_line(bp.deploy_command(blueprint, target, name)))
    steps.append(bp.shell_line(bp.invoke_command(blueprint, target, name)))
    print("Next:")
    for step in steps:
        print(f"  {step}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "blueprints",
        help="list the starter functions `shoal init` writes",
        description="List the blueprints: name, runtime and what each one is.",
    )
    p.set_defaults(func=cmd_blueprints)

    p = subparsers.add_parser(
        "init",
        help="write a ready-to-deploy function from a blueprint",
        description="Write a blueprint's function, a sample event.json and a README into DIR, then print "
        "the shoal deploy and shoal invoke commands to run. Java blueprints are compiled when javac is "
        "found.",
    )
    p.add_argument("dir", nargs="?", metavar="DIR", help="where to write it [default: ./BLUEPRINT]")
    p.add_argument(
        "--blueprint", "-b", required=True, metavar="NAME", help="which blueprint (see `shoal blueprints`)"
    )
    p.add_argument(
        "--name", help="function name for the printed commands [default: DIR's name, else the blueprint's]"
    )
    p.add_argument(
        "--force", action="store_true", help="write into a non-empty DIR, overwriting files of the same name"
    )
    p.add_argument("--no-build", action="store_true", help="do not compile (Java); print how to instead")
    p.set_defaults(func=cmd_init)
