"""`iaf`: dev, api, worker, migrate (and the data-team commands under `iaf gdpr`)."""

from __future__ import annotations

import asyncio
import logging

import typer

from iaf.gdpr.cli import app as gdpr_app
from iaf.settings import get_settings

app = typer.Typer(help="IAFactory Agents", no_args_is_help=True)
# Data-team commands: iaf gdpr export|erase|status|retry|cancel.
app.add_typer(gdpr_app, name="gdpr")


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def dev(
    services_only: bool = typer.Option(
        False, "--services-only", help="Only PostgreSQL, Temporal, SMTP"
    ),
) -> None:
    """Run the whole embedded platform (or only its services)."""
    from iaf.devstack.stack import run_dev

    _logging(False)
    run_dev(get_settings(), services_only)


@app.command()
def api(
    host: str = typer.Option(None, help="Bind address (default: API_HOST)"),
    port: int = typer.Option(None, help="Port (default: API_PORT)"),
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from api.main import create_app

    settings = get_settings()
    _logging(False)
    uvicorn.run(
        create_app(settings),
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="warning",
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=5,
    )


@app.command()
def worker(
    no_retrieval: bool = typer.Option(
        False, "--no-retrieval", help="Do not serve the Qdrant task queue (another worker does)"
    ),
    verbose: bool = typer.Option(False, "--verbose"),
) -> None:
    """Run a Temporal worker."""
    from workers.main import run_worker

    _logging(verbose)
    asyncio.run(run_worker(get_settings(), serve_retrieval=not no_retrieval))


@app.command()
def migrate() -> None:
    """Apply database migrations and register Temporal search attributes."""
    from iaf.migrate import migrate_all

    _logging(False)
    asyncio.run(migrate_all(get_settings()))
    typer.echo("migrations applied")


if __name__ == "__main__":
    app()
