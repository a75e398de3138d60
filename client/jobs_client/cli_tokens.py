"""`jobs token`: mint a token with the deployment's secret."""

from __future__ import annotations

from typing import Annotated

import typer

from .tokens import ROLES, mint_token


def token(
    role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "service",
    sub: Annotated[str, typer.Option(help="The principal.")] = "svc-cli",
    secret: Annotated[str | None, typer.Option(envvar="JOBS_JWT_SECRET", help="The deployment's HS256 secret.")] = None,
    ttl_s: Annotated[int, typer.Option(help="Lifetime in seconds.")] = 3600,
    queues: Annotated[
        str | None, typer.Option(help="Scope a service token: comma-separated queue names, each exact or ending in *.")
    ] = None,
) -> None:
    """Mint a token (local cloud and tests: JOBS_JWT_SECRET is its secret)."""
    if not secret:
        raise typer.BadParameter("pass --secret or set JOBS_JWT_SECRET", param_hint="--secret")
    scope = [name.strip() for name in queues.split(",") if name.strip()] if queues is not None else None
    try:
        print(mint_token(secret, sub, role, ttl_s=ttl_s, queues=scope))
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--queues" if scope is not None else "--role") from None


def register(app: typer.Typer) -> None:
    app.command()(token)
