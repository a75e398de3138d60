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

from .cloud import LocalCloud
from .config import CloudConfig
from .http_api import PortInUse

TOKEN_TTL_S = 12 * 3600


def _serve(_: argparse.Namespace) -> int:
    config = CloudConfig.from_env()
    # `kill -USR1 <pid>` prints every thread's stack: what a stuck local cloud is doing.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    cloud = LocalCloud(config)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"Starting the local cloud of {config.template_path.name} ...", flush=True)
    try:
        cloud.start()
    except PortInUse as error:
        print(f"error: {error}", file=sys.stderr)
        cloud.stop()
        return 2
    print(banner(config, cloud.dynamodb_endpoint), flush=True)
    # Wake every half second: the kernel may deliver SIGINT to any of the cloud's threads, and
    # then nothing interrupts a main thread blocked in a lock, so Python would never run the
    # handler (seen once under load: the cloud ignored Ctrl-C for two minutes).
    while not stop.wait(0.5):
        pass
    print("Stopping...", flush=True)
    cloud.stop()
    return 0


def banner(config: CloudConfig, dynamodb_endpoint: str) -> str:
    """What a newcomer needs: where it answers, a token to paste, where the data lives."""
    from jobcore.auth import mint_token

    token = mint_token(config.jwt_secret, "local-dev", "service", ttl_s=TOKEN_TTL_S)
    # The console signs in from the link's fragment, which the browser never sends to a server.
    console_token = mint_token(config.jwt_secret, "local-admin", "admin", ttl_s=TOKEN_TTL_S)
    http = f"http://{config.host}:{config.http_port}"
    if config.dynamodb_endpoint:
        data = f"{dynamodb_endpoint} (JOBS_DYNAMODB_ENDPOINT)"
    elif config.data_dir:
        data = f"{config.data_dir.resolve()} (JOBS_DATA_DIR; kept across restarts)"
    else:
        data = "in memory, gone at Ctrl-C (JOBS_DATA_DIR=.data keeps it)"
    logs = (
        "every function's JSON lines (JOBS_LOG=json)"
        if config.log_format == "json"
        else "a line per request (JOBS_LOG=json: all)"
    )
    return "\n".join(
        [
            "",
            f"  Console     {http}/#token={console_token}",
            f"  HTTP API    {http}/v1",
            f"  WebSocket   ws://{config.host}:{config.ws_port}",
            f"  DynamoDB    {dynamodb_endpoint} (embedded)"
            if not config.dynamodb_endpoint
            else f"  DynamoDB    {dynamodb_endpoint}",
            f"  Data        {data}",
            f"  Logs        {logs}",
            "",
            f"  export JOBS_URL={http} JOBS_TOKEN={token}",
            f'  curl -H "Authorization: Bearer $JOBS_TOKEN" {http}/v1/queues',
            "  (a service token for 12 hours; `.venv/bin/jobs token --role user --sub alice` mints others)",
            "",
            "Ready. Ctrl-C stops everything.",
        ]
    )


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
