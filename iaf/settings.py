"""One Settings object for every process; each field is an environment variable of the same name."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    # Where the embedded stack keeps everything (Postgres data, Temporal SQLite, Qdrant, mails).
    data_dir: Path = Path(".iaf")

    database_url: str = "postgresql://postgres@127.0.0.1:55432/iaf"
    database_pool_size: int = 10
    # A new connection gives up after this long (asyncpg waits a minute by default).
    database_connect_timeout_seconds: float = 5.0
    # The API's breaker: a SELECT 1 this often, failing after this long (twice in a row opens
    # it); while open, requests get 503 with this Retry-After.
    database_probe_interval_seconds: float = 0.25
    database_probe_timeout_seconds: float = 0.6
    database_retry_after_seconds: int = 2

    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233
    temporal_task_queue: str = "iaf-main"
    temporal_retrieval_task_queue: str = "iaf-retrieval"
    # A workflow start waits this long at most; after one failed for want of Temporal, starts
    # are refused at once for the backoff and left to the sweep (rule 5).
    temporal_start_timeout_seconds: float = 1.0
    temporal_start_backoff_seconds: float = 5.0

    # Qdrant server when set; otherwise Qdrant Edge (the engine in-process) under data_dir.
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    qdrant_path: Path | None = None

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_use_tls: bool = False
    smtp_start_tls: bool = False
    mail_from: str = "IAFactory Agents <no-reply@iafactory.local>"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # Proxies whose X-Forwarded-For is trusted (per-IP limits see the real client behind them).
    forwarded_allow_ips: str = "127.0.0.1"
    public_base_url: str = "http://127.0.0.1:8000"
    cors_origins: list[str] = Field(default_factory=list)

    # Signs access tokens; the embedded stack generates one into data_dir on first use.
    jwt_secret: SecretStr | None = None
    access_token_minutes: int = 60 * 24
    # Keys the non-personal HMAC used to find a user's workflows at erasure time.
    pseudonym_secret: SecretStr | None = None

    login_attempts_per_minute: int = 10  # per account
    auth_requests_per_ip_per_minute: int = 60  # login and sign-up, per client address
    posts_per_minute: int = 60
    # Typing notices and read markers cost a NOTIFY to every API replica each: per user.
    typing_per_minute: int = 60
    read_markers_per_minute: int = 120
    message_max_bytes: int = 16 * 1024
    searches_per_minute: int = 60
    message_edit_window_minutes: int = 15
    sse_heartbeat_seconds: float = 15.0
    # Open SSE streams one person may hold on one API process (429 beyond).
    sse_streams_per_user: int = 20
    # /healthz answers from one check per interval, whoever calls it and how often.
    health_cache_seconds: float = 2.0
    # Daily limits per person (per organisation for org users): what a stolen token or a
    # runaway script could otherwise repeat without end.
    message_edits_per_day: int = 2000
    rooms_per_day: int = 200
    member_additions_per_day: int = 1000
    org_users_per_day: int = 200
    invitations_per_day: int = 300
    password_resets_per_hour: int = 5
    password_reset_minutes: float = 60.0
    sweep_interval_seconds: float = 10.0
    sweep_min_age_seconds: float = 5.0
    sweep_batch_size: int = 500
    sweep_concurrency: int = 16

    default_llm_model: str = "offline/iaf-offline"
    offline_llm_tokens_per_second: float = 0.0
    embedding_model: str = "local/all-MiniLM-L6-v2"

    starting_credits: int = 1000

    # Agent replies, knowledge and memories.
    reply_history_token_budget: int = 2000
    reply_history_max_messages: int = 50
    retrieval_top_k: int = 5
    # hybrid: MiniLM and BM25 ranks fused (RRF); dense or sparse alone for comparison.
    retrieval_mode: Literal["hybrid", "dense", "sparse"] = "hybrid"
    # How many of each side's best chunks the fusion ranks.
    retrieval_candidates: int = 20
    memory_top_k: int = 3
    # Below this best similarity the planner refines the query and retrieves again.
    retrieval_min_score: float = 0.3
    agent_max_handoff_depth: int = 3
    # Held from the requester's balance while a reply runs; the settle step refunds the rest.
    reply_credit_reservation: int = 50
    reply_credits_per_1k_tokens: int = 10
    reply_max_tokens: int = 1024
    delta_coalesce_ms: int = 50
    # Also bounds how long a cancel takes to reach a streaming reply (heartbeats carry it).
    reply_heartbeat_seconds: float = 5.0
    reply_stream_max_attempts: int = 3
    # A stream whose attempts ran out on a worker that stopped heartbeating (killed, restarted
    # or overloaded, never the model: the stream heartbeats while the model is silent) starts
    # over with reply_stream_max_attempts fresh attempts, this many times at most.
    reply_stream_worker_loss_restarts: int = 5
    reply_retry_initial_seconds: float = 1.0
    # The API starts the replies of mentioned agents itself, in parallel with RouteMessage.
    api_starts_replies: bool = True
    # Empty: default_llm_model classifies ambiguous messages in auto-routing rooms.
    classifier_model: str = ""
    # Several agents answering together (`@team`, or several mentions with "together"):
    # `@team` alone asks the default panel; at most team_max_agents answer; the synthesiser
    # writes the one answer from theirs.
    team_default_agents: list[str] = Field(
        default_factory=lambda: ["architect", "developer", "tester"]
    )
    team_max_agents: int = 5
    team_synthesizer_agent: str = "orchestrator"
    knowledge_max_bytes: int = 256 * 1024
    # An uploaded .md/.txt/.pdf file (its extracted text must also fit knowledge_max_bytes);
    # below the API's 1 MiB body limit, multipart framing included.
    knowledge_file_max_bytes: int = 900 * 1024
    knowledge_chunk_chars: int = 800
    knowledge_chunk_overlap_chars: int = 120
    knowledge_uploads_per_hour: int = 120
    memory_max_bytes: int = 2000
    memories_per_user: int = 200
    # Re-start ingestion/removal workflows of rows left pending this long (Temporal was away).
    knowledge_resume_after_seconds: float = 30.0

    # Invitations, referrals and the credit ledger.
    invitation_default_minutes: int = 7 * 24 * 60
    invitation_max_minutes: int = 30 * 24 * 60
    # One reminder this long before expiry (at half-life for invitations shorter than twice this).
    invitation_reminder_before_minutes: int = 24 * 60
    # Keys the HMAC that derives invitation tokens from their stored salt; generated when unset.
    invitation_secret: SecretStr | None = None
    invitation_accepts_per_minute: int = 20
    invitation_lookups_per_minute: int = 60
    invitations_per_hour: int = 50
    invitation_resends_per_hour: int = 5
    referral_reward_credits: int = 100
    referral_deadline_days: float = 30.0
    referral_monthly_cap: int = 10
    # How often a waiting Referral re-reads first_action_at, in case a signal was lost.
    referral_recheck_minutes: float = 24 * 60

    # Notifications: a mention, an accepted invitation or a finished reply reaching someone
    # offline (no SSE stream of theirs open on any API process) goes into one e-mail digest,
    # at most one per notification_digest_minutes; the first waits the delay so that what
    # happens together arrives together. Off: nothing is queued.
    notification_emails: bool = True
    notification_digest_minutes: float = 15.0
    notification_digest_delay_seconds: float = 60.0
    # Each API process renews a lease for every person with a stream open there.
    presence_lease_seconds: float = 30.0
    presence_renew_seconds: float = 10.0
    # Signs the digests' unsubscribe links; generated into data_dir when unset.
    unsubscribe_secret: SecretStr | None = None

    # GDPR export and erasure.
    erasure_grace_days: float = 7.0
    export_link_days: float = 5.0
    # "tombstone" replaces an erased author's shared messages; "keep" keeps their text unsigned.
    anonymise_policy: Literal["tombstone", "keep"] = "tombstone"
    audit_retention_days: int = 3 * 365
    gdpr_step_max_attempts: int = 12
    gdpr_retry_initial_seconds: float = 1.0
    # Signs erasure receipts (HMAC-SHA256); generated into data_dir when unset, like jwt_secret.
    erasure_receipt_secret: SecretStr | None = None

    # Attachments: the bytes under DATA_DIR/files, or in an S3-compatible bucket.
    files_backend: Literal["local", "s3"] = "local"
    files_s3_bucket: str | None = None
    files_s3_prefix: str = ""
    files_s3_endpoint_url: str | None = None
    files_s3_region: str | None = None
    files_s3_access_key_id: str | None = None
    files_s3_secret_access_key: SecretStr | None = None
    attachment_max_bytes: int = 10 * 1024 * 1024
    attachments_per_message: int = 10
    attachment_uploads_per_hour: int = 200
    # An upload never posted with a message is removed after this long.
    attachment_unposted_hours: float = 24.0
    # Pages read from a PDF attachment added to a room's knowledge.
    attachment_pdf_max_pages: int = 500

    # Knowledge from the web: no host may be crawled until the operator lists it
    # (`*.example.com` for subdomains); pages per source, bytes per page, re-crawl interval.
    crawl_allowed_hosts: list[str] = Field(default_factory=list)
    crawl_max_pages: int = 100
    crawl_page_max_bytes: int = 2 * 1024 * 1024
    crawl_timeout_seconds: float = 20.0
    crawl_min_recrawl_minutes: float = 60.0
    crawl_sources_per_hour: int = 20

    # Legal pages (/legal/…) and the operator's details they state; unset ones show as
    # "[set LEGAL_…]" on the pages (GET /api/legal lists them).
    legal_org_name: str | None = None
    legal_org_address: str | None = None
    legal_contact_email: str | None = None
    legal_dpo_name: str | None = None
    legal_dpo_email: str | None = None
    legal_supervisory_authority: str | None = None
    legal_hosting: str | None = None
    legal_governing_law: str | None = None
    legal_effective_date: str | None = None

    # OpenAI-compatible API (/v1): how long a request waits for its reply before giving up
    # (the reply is then cancelled).
    openai_reply_timeout_seconds: float = 300.0

    # Operations: logs, metrics, traces, shutdown.
    # The project's own loggers; everything else (libraries) logs from third_party_log_level.
    log_level: str = "INFO"
    third_party_log_level: str = "WARNING"
    # auto: JSON lines when stderr is not a terminal, short text when it is; dev: short text
    # without the line per HTTP request (the console of `iaf dev`).
    log_format: Literal["auto", "json", "text", "dev"] = "auto"
    # Also write every line as JSON here (`iaf dev` keeps its processes' logs in data_dir/logs).
    log_file: Path | None = None
    # A Prometheus listener for this process on metrics_host:metrics_port (off when unset);
    # loopback by default, so only the machine itself (or a sidecar) can scrape it.
    metrics_host: str = "127.0.0.1"
    metrics_port: int | None = None
    # When set, the API also serves /metrics to `Authorization: Bearer <token>`; 404 otherwise.
    metrics_token: SecretStr | None = None
    # OTLP/HTTP traces (e.g. http://otel-collector:4318) when set; no tracing otherwise.
    otel_exporter_otlp_endpoint: str | None = None
    otel_service_name: str = "iaf"
    # On SIGINT/SIGTERM a worker lets running activities finish for this long, then cancels
    # them; Temporal retries what did not finish on another worker (or after a restart).
    worker_shutdown_grace_seconds: float = 2.0
    # Activities (mostly streaming replies) one worker runs at once; more wait in Temporal's
    # queue, where no heartbeat is due. Beyond what one event loop keeps up with, every
    # stream slows and heartbeats start to miss: add workers instead (tests/chaos).
    worker_max_concurrent_activities: int = Field(default=40, ge=1, le=1000)

    @property
    def resolved_qdrant_path(self) -> Path:
        return self.qdrant_path or self.data_dir / "qdrant"

    def secret(self, name: str) -> str:
        """Configured secret, or one generated once and kept in data_dir so every process agrees."""
        configured: SecretStr | None = getattr(self, name)
        if configured is not None:
            return configured.get_secret_value()
        path = self.data_dir / "secrets" / name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            try:
                with path.open("x") as handle:
                    handle.write(secrets.token_urlsafe(48))
                path.chmod(0o600)
            except FileExistsError:
                pass
        return path.read_text().strip()


@lru_cache
def get_settings() -> Settings:
    return Settings()
