"""`python -m localcloud`: serve the template locally, or mint a token.

python -m localcloud serve              # what `make run` does
python -m localcloud token --role service --sub svc-a
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import signal
import sys
import threading

from .cloud import CloudConfig, LocalCloud
from .http_api import PortInUse


def _serve(_: argparse.Namespace) -> int:
    config = CloudConfig.from_env()
    # `kill -USR1 <pid>` prints every thread's stack: what a stuck local cloud is doing.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    cloud = LocalCloud(config)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        cloud.start()
    except PortInUse as error:
        print(f"error: {error}", file=sys.stderr)
        cloud.stop()
        return 2
    print(f"HTTP API       http://{config.host}:{config.http_port}/v1", flush=True)
    print(f"WebSocket API  ws://{config.host}:{config.ws_port}", flush=True)
    print(f"DynamoDB       {cloud.dynamodb_endpoint}", flush=True)
    print("A token:       .venv/bin/python -m localcloud token --role service --sub svc-a", flush=True)
    print("Ready. Ctrl-C stops everything.", flush=True)
    stop.wait()
    print("Stopping...", flush=True)
    cloud.stop()
    return 0


def _token(args: argparse.Namespace) -> int:
    from jobcore.auth import mint_token

    secret = args.secret or os.environ.get("JOBS_JWT_SECRET") or CloudConfig().jwt_secret
    print(mint_token(secret, args.sub, args.role, ttl_s=args.ttl))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the HTTP and WebSocket APIs of template.yaml").set_defaults(run=_serve)
    token = commands.add_parser("token", help="mint an HS256 token signed with JOBS_JWT_SECRET")
    token.add_argument("--role", choices=["service", "user", "admin"], required=True)
    token.add_argument("--sub", required=True)
    token.add_argument("--ttl", type=int, default=12 * 3600, help="seconds until it expires")
    token.add_argument("--secret", help="defaults to JOBS_JWT_SECRET, then the local default")
    token.set_defaults(run=_token)
    args = parser.parse_args(argv)
    if args.command is None:
        args = parser.parse_args(["serve", *(argv or [])])
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
