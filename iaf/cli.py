"""`iaf`: dev, api, worker, migrate, reindex (and the data-team commands under `iaf gdpr`)."""

from __future__ import annotations

import asyncio
import logging
import os
import threading

import typer

from iaf.gdpr.cli import app as gdpr_app
from iaf.settings import Settings, get_settings

app = typer.Typer(help="IAFactory Agents", no_args_is_help=True)
# Data-team commands: iaf gdpr export|erase|status|retry|cancel.
app.add_typer(gdpr_app, name="gdpr")
log = logging.getLogger(__name__)


def _observed(settings: Settings, process: str) -> None:
    """Logs, the Temporal runtime (its logs and metrics), traces, the metrics listener."""
    from iaf.observability.logs import configure_logging
    from iaf.observability.metrics import install_temporal_runtime, start_metrics_listener
    from iaf.observability.tracing import install_tracing

    configure_logging(settings, process)
    install_temporal_runtime(settings)
    install_tracing(settings, process)
    start_metrics_listener(settings)


def _finish() -> None:
    """Flush traces and logs, then exit without waiting for a thread still busy: loading the
    embedding model takes seconds and cannot be interrupted, and nothing it holds is lost."""
    from iaf.observability.tracing import uninstall_tracing

    uninstall_tracing()
    busy = []
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join(0.5)
            if thread.is_alive():
                busy.append(thread.name)
    if busy:
        log.info("not waiting for busy threads: %s", ", ".join(busy))
        logging.shutdown()
        os._exit(0)


@app.command()
def dev(
    services_only: bool = typer.Option(
        False, "--services-only", help="Only PostgreSQL, Temporal, SMTP"
    ),
) -> None:
    """Run the whole embedded platform (or only its services)."""
    from iaf.devstack.stack import run_dev
    from iaf.observability.logs import configure_logging

    settings = get_settings()
    own_log = settings.data_dir / "logs" / "dev.log"
    configure_logging(settings.model_copy(update={"log_file": own_log}), "dev", console="dev")
    run_dev(settings, services_only)


@app.command()
def api(
    host: str = typer.Option(None, help="Bind address (default: API_HOST)"),
    port: int = typer.Option(None, help="Port (default: API_PORT)"),
) -> None:
    """Run the HTTP API."""
    from api.server import serve

    settings = get_settings()
    _observed(settings, "api")
    serve(settings, host or settings.api_host, port or settings.api_port)
    _finish()


@app.command()
def worker(
    no_retrieval: bool = typer.Option(
        False, "--no-retrieval", help="Do not serve the Qdrant task queue (another worker does)"
    ),
    verbose: bool = typer.Option(False, "--verbose"),
) -> None:
    """Run a Temporal worker."""
    from workers.main import run_worker

    settings = get_settings()
    if verbose:
        settings = settings.model_copy(update={"log_level": "DEBUG"})
    _observed(settings, "worker")
    asyncio.run(run_worker(settings, serve_retrieval=not no_retrieval))
    _finish()


@app.command()
def migrate() -> None:
    """Apply database migrations and register Temporal search attributes."""
    from iaf.migrate import migrate_all
    from iaf.observability.logs import configure_logging

    settings = get_settings()
    configure_logging(settings, "migrate")
    asyncio.run(migrate_all(settings))
    typer.echo("migrations applied")


@app.command()
def reindex() -> None:
    """Rebuild the vector store from PostgreSQL (stop the worker that serves retrieval first)."""
    from iaf.observability.logs import configure_logging
    from iaf.retrieval.rebuild import rebuild_vectors

    settings = get_settings()
    configure_logging(settings, "reindex")
    report = asyncio.run(rebuild_vectors(settings, typer.echo))
    typer.echo(
        f"reindexed {report.documents} documents ({report.chunks} chunks) and"
        f" {report.memories} memories in {report.seconds:.1f} s"
        + ("; old local-mode data removed" if report.removed_local_mode_data else "")
    )


if __name__ == "__main__":
    app()
