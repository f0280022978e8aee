"""The `daca-kit` command.

daca-kit serve [--port 7860] [--api-only]   run the app (same as python app.py)
daca-kit doctor                              check every configured backend with one round trip
daca-kit bench [...]                         benchmark a running or self-started app (see --help)
daca-kit space build --target zerogpu|cpu|docker OUT_DIR
                                             write the folder for a Hugging Face Space (zerogpu: the free one)
daca-kit reviewer-hash NAME [--stdin]        print NAME:hash for DACA_REVIEWERS (asks for the password)
"""

from __future__ import annotations

import argparse
import logging
import sys
from getpass import getpass

from daca_kit.errors import ConfigError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="daca-kit", description="daca_kit: chat with human review on a free-tier stack"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the app: Gradio UI and REST API on one port")
    serve.add_argument("--port", type=int, help="HTTP port (default: PORT or 7860)")
    serve.add_argument("--host", help="bind address (default: HOST or 0.0.0.0)")
    serve.add_argument("--api-only", action="store_true", help="serve the REST API without the UI")
    sub.add_parser("doctor", help="check each configured backend: one harmless round trip, latency, advice")
    sub.add_parser("bench", help="benchmark the app (options: daca-kit bench --help)", add_help=False)
    space = sub.add_parser("space", help="the Hugging Face Space: build its folder")
    space_sub = space.add_subparsers(dest="space_command", required=True)
    build = space_sub.add_parser(
        "build",
        help="write a complete Space folder (no network call)",
        description="Targets: zerogpu (free for personal accounts in good standing), cpu and docker (PRO).",
    )
    build.add_argument("--target", default="zerogpu", choices=("zerogpu", "cpu", "docker"))
    build.add_argument("out_dir", metavar="OUT_DIR", help="the folder to write (emptied first)")
    hashing = sub.add_parser(
        "reviewer-hash", help="print NAME:hash, a named reviewer's entry of DACA_REVIEWERS"
    )
    hashing.add_argument("name", help="the reviewer's name (letters, digits, '.', '_' or '-')")
    hashing.add_argument(
        "--stdin", action="store_true", help="read the password from the first line of standard input"
    )
    args, rest = parser.parse_known_args(argv)

    if args.command == "bench":
        from daca_kit.ops.bench import main as bench_main

        return int(bench_main(rest))
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "space":
        return _space_build(args.target, args.out_dir)
    if args.command == "reviewer-hash":
        return reviewer_hash(args.name, from_stdin=args.stdin)

    from daca_kit.settings import load_settings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        overrides: dict[str, object] = {}
        if getattr(args, "port", None):
            overrides["port"] = args.port
        if getattr(args, "host", None):
            overrides["host"] = args.host
        settings = load_settings(**overrides)
    except ConfigError as exc:
        print(f"daca-kit: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        from daca_kit.web.server import serve as run_server

        run_server(settings, with_ui=not args.api_only)
        return 0
    from daca_kit.ops.doctor import main as doctor_main

    return int(doctor_main(settings))


def _space_build(target: str, out_dir: str) -> int:
    """`daca-kit space build`: writes the folder, says what it is and costs; 1 when it is incomplete."""
    from daca_kit.ops.space import build_space, check_space

    folder = build_space(out_dir, target=target)
    print(folder.describe())
    problems = check_space(folder.path)
    for problem in problems:
        print(f"problem: {problem}", file=sys.stderr)
    return 1 if problems else 0


def reviewer_hash(name: str, *, from_stdin: bool = False) -> int:
    """Prints `name:hash` for DACA_REVIEWERS; the password is typed twice without echo (never in argv)."""
    from daca_kit.settings import parse_reviewers
    from daca_kit.web.passwords import MIN_LENGTH, hash_password

    try:
        parse_reviewers(name)
    except ValueError as exc:
        print(f"daca-kit: {exc}", file=sys.stderr)
        return 2
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass(f"Password for reviewer {name}: ")
        if getpass("The same password again: ") != password:
            print("daca-kit: the two passwords differ; nothing was printed.", file=sys.stderr)
            return 2
    if len(password) < MIN_LENGTH:
        print(f"daca-kit: use a password of at least {MIN_LENGTH} characters.", file=sys.stderr)
        return 2
    print(f"{name}:{hash_password(password)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
