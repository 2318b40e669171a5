"""docker-compose.yml agrees with the code: Settings names, service wiring, scale, health.

The compose file is the only place the production topology is written down, and nothing
runs it in CI, so these checks read it as data: every variable handed to the app must be a
Settings field (a typo would silently fall back to the embedded default), the addresses must
name services that exist, and the values must parse the way Settings will parse them.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from pydantic import SecretStr

from iaf.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"

APP_SERVICES = ("migrate", "api", "worker")
# Settings whose defaults are right for the embedded stack only: in production each one
# must be given explicitly, or a replica would talk to 127.0.0.1 or mint its own secret.
REQUIRED_IN_PRODUCTION = (
    "JWT_SECRET",
    "PSEUDONYM_SECRET",
    "DATABASE_URL",
    "TEMPORAL_ADDRESS",
    "QDRANT_URL",
    "SMTP_HOST",
)
SECRETS = ("JWT_SECRET", "PSEUDONYM_SECRET")

_BRACED = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^${}]*))?\}")
_BARE = re.compile(r"\$(?P<name>[A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose-style `${VAR}`, `${VAR:-default}`, `${VAR:?error}` and `$$` with `env` as the shell.

    A required variable that `env` lacks resolves to `required-<name>` so that the rest of
    the value (a URL around a password, say) can still be checked.
    """
    env = env or {}
    escaped = "\x00"
    text = value.replace("$$", escaped)

    def braced(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        current = env.get(name)
        if op in (":-", "-"):
            unset = current is None or (op == ":-" and current == "")
            return arg if unset else str(current)
        if op in (":?", "?"):
            missing = current is None or (op == ":?" and current == "")
            return f"required-{name.lower()}" if missing else str(current)
        if op in (":+", "+"):
            present = current is not None and (op == "+" or current != "")
            return arg if present else ""
        return current or ""

    previous = None
    while previous != text:  # innermost first, so nested defaults resolve too
        previous = text
        text = _BRACED.sub(braced, text)
    text = _BARE.sub(lambda m: env.get(m["name"], ""), text)
    return text.replace(escaped, "$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    assert COMPOSE_FILE.is_file(), f"{COMPOSE_FILE} is missing"
    data = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(data, dict) and isinstance(data.get("services"), dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result: dict[str, dict[str, Any]] = compose["services"]
    return result


def environment(service: dict[str, Any]) -> dict[str, str | None]:
    """A service's environment as a dict; None marks a pass-through (`KEY:` or `- KEY`)."""
    raw = service.get("environment") or {}
    if isinstance(raw, list):
        result: dict[str, str | None] = {}
        for item in raw:
            key, sep, val = str(item).partition("=")
            result[key] = val if sep else None
        return result
    return {str(k): (None if v is None else str(v)) for k, v in raw.items()}


def settings_env_names() -> set[str]:
    """Every environment name pydantic-settings maps onto a Settings field (upper-cased)."""
    config = Settings.model_config
    prefix = str(config.get("env_prefix") or "")
    case_sensitive = bool(config.get("case_sensitive"))
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        aliases: list[str] = []
        alias = field.validation_alias
        if isinstance(alias, str):
            aliases.append(alias)
        elif alias is not None and hasattr(alias, "choices"):
            aliases.extend(c for c in alias.choices if isinstance(c, str))
        elif field.alias:
            aliases.append(field.alias)
        for name in aliases or [prefix + field_name]:
            names.add(name if case_sensitive else name.upper())
    return names


def service_of_url(url: str) -> str | None:
    """Host of `scheme://host:port/...` or of a bare `host:port`."""
    if "://" not in url:
        url = f"//{url}"
    return urlsplit(url).hostname


def depends_on(service: dict[str, Any]) -> dict[str, dict[str, Any]]:
    raw = service.get("depends_on") or {}
    if isinstance(raw, list):
        return {name: {"condition": "service_started"} for name in raw}
    return {str(k): dict(v or {}) for k, v in raw.items()}


def test_interpolate_follows_compose_rules() -> None:
    assert interpolate("${A:-x}") == "x"
    assert interpolate("${A:-x}", {"A": "y"}) == "y"
    assert interpolate("${A-x}", {"A": ""}) == ""
    assert interpolate("${A:?set A}") == "required-a"
    assert interpolate("${A:?set A}", {"A": "s"}) == "s"
    assert interpolate("$${A}") == "${A}"
    assert interpolate("${A:-${B:-z}}") == "z"
    assert interpolate("u://${U:-iaf}:${P:?p}@db:5432/x") == "u://iaf:required-p@db:5432/x"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_service_exists_and_runs_the_iaf_cli(services: dict[str, Any], name: str) -> None:
    assert name in services, f"service {name!r} missing from docker-compose.yml"
    command = services[name].get("command")
    argv = shlex.split(command) if isinstance(command, str) else list(command or [])
    expected = {"migrate": ["iaf", "migrate"], "api": ["iaf", "api"], "worker": ["iaf", "worker"]}
    assert argv[:2] == expected[name], f"{name} runs {argv}"
    if name == "api":
        assert "--host" in argv and argv[argv.index("--host") + 1] == "0.0.0.0", argv


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_names_are_settings_fields(services: dict[str, Any], name: str) -> None:
    known = settings_env_names()
    unknown = sorted(set(environment(services[name])) - known)
    assert not unknown, f"{name} sets variables Settings does not read: {unknown}"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_values_parse_as_settings(
    services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in settings_env_names():
        monkeypatch.delenv(key, raising=False)
    resolved = {
        key: interpolate(value)
        for key, value in environment(services[name]).items()
        if value is not None
    }
    for key, value in resolved.items():
        monkeypatch.setenv(key, value)
    settings = Settings(_env_file=None)
    for key, value in resolved.items():
        parsed = getattr(settings, key.lower())
        if isinstance(parsed, SecretStr):
            parsed = parsed.get_secret_value()
        assert parsed is not None, f"{name}: {key}={value!r} did not reach Settings"


@pytest.mark.parametrize("name", ["api", "worker"])
def test_production_settings_are_set(services: dict[str, Any], name: str) -> None:
    env = environment(services[name])
    missing = [key for key in REQUIRED_IN_PRODUCTION if not env.get(key)]
    assert not missing, f"{name} leaves these at their embedded-stack defaults: {missing}"


@pytest.mark.parametrize("name", ["api", "worker"])
def test_secrets_come_from_the_environment_and_are_required(
    services: dict[str, Any], name: str
) -> None:
    env = environment(services[name])
    for key in SECRETS:
        value = env.get(key) or ""
        assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), (
            f"{name}: {key} must be `${{{key}:?…}}` (required, never written in the file), "
            f"not {value!r}"
        )


def test_api_and_worker_share_their_settings(services: dict[str, Any]) -> None:
    api, worker = environment(services["api"]), environment(services["worker"])
    shared = set(api) & set(worker)
    assert set(REQUIRED_IN_PRODUCTION) <= shared
    differing = {key: (api[key], worker[key]) for key in shared if api[key] != worker[key]}
    assert not differing, f"api and worker disagree: {differing}"
    migrate = environment(services["migrate"])
    assert migrate.get("DATABASE_URL") == api.get("DATABASE_URL")


def test_database_url_points_at_the_postgres_service(services: dict[str, Any]) -> None:
    assert "postgres" in services
    assert str(services["postgres"].get("image", "")).startswith("postgres:16")
    url = interpolate(environment(services["api"])["DATABASE_URL"] or "")
    assert url.split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")
    assert service_of_url(url) == "postgres", url
    postgres_env = {k: interpolate(v or "") for k, v in environment(services["postgres"]).items()}
    parts = urlsplit(url)
    assert parts.username == postgres_env.get("POSTGRES_USER", "postgres")
    assert parts.password == postgres_env.get("POSTGRES_PASSWORD")
    assert parts.path.lstrip("/") == postgres_env.get("POSTGRES_DB", parts.username)


def test_temporal_address_points_at_the_temporal_service(services: dict[str, Any]) -> None:
    address = interpolate(environment(services["api"])["TEMPORAL_ADDRESS"] or "")
    assert service_of_url(address) == "temporal", address
    temporal = services["temporal"]
    assert "temporalio/auto-setup" in str(temporal.get("image"))
    temporal_env = {k: interpolate(v or "") for k, v in environment(temporal).items()}
    assert temporal_env.get("DB") == "postgres12", "Temporal must persist to PostgreSQL"
    assert temporal_env.get("POSTGRES_SEEDS") in services, temporal_env.get("POSTGRES_SEEDS")
    assert depends_on(temporal).get("postgres", {}).get("condition") == "service_healthy"


def test_temporal_namespace_is_the_one_auto_setup_creates(services: dict[str, Any]) -> None:
    app_namespace = interpolate(environment(services["worker"]).get("TEMPORAL_NAMESPACE") or "")
    created = interpolate(environment(services["temporal"]).get("DEFAULT_NAMESPACE") or "default")
    assert app_namespace in ("", created), (app_namespace, created)


def test_migrate_can_register_search_attributes(services: dict[str, Any]) -> None:
    # `iaf migrate` adds the custom search attributes to the namespace: Temporal must be up
    # and the namespace created (auto-setup does it after the server starts) when it runs.
    migrate = depends_on(services["migrate"])
    assert migrate.get("temporal", {}).get("condition") == "service_healthy"
    check = services["temporal"].get("healthcheck") or {}
    test = check.get("test")
    text = test if isinstance(test, str) else " ".join(map(str, test or []))
    assert "cluster health" in text and "namespace describe" in text, text
    assert "DEFAULT_NAMESPACE" in text, "the healthcheck must wait for the app's namespace"
    assert depends_on(services["worker"]).get("temporal", {}).get("condition") == "service_healthy"


def test_qdrant_url_points_at_the_qdrant_service(services: dict[str, Any]) -> None:
    url = interpolate(environment(services["api"])["QDRANT_URL"] or "")
    assert service_of_url(url) == "qdrant", url
    assert "qdrant/qdrant" in str(services["qdrant"].get("image"))
    assert urlsplit(url).port == 6333


def test_smtp_defaults_to_the_relay_service(services: dict[str, Any]) -> None:
    env = environment(services["worker"])
    host = interpolate(env["SMTP_HOST"] or "")
    assert host in services, f"SMTP_HOST defaults to {host!r}, which is no service"
    port = int(interpolate(env.get("SMTP_PORT") or "0"))
    assert 0 < port < 65536
    assert depends_on(services["worker"]).get(host), "the worker sends mail: it needs the relay"


def test_api_healthcheck_requests_healthz(services: dict[str, Any]) -> None:
    check = services["api"].get("healthcheck") or {}
    assert not check.get("disable", False)
    test = check.get("test")
    text = test if isinstance(test, str) else " ".join(map(str, test or []))
    assert re.search(r"https?://(127\.0\.0\.1|localhost):8000/healthz\b", text), text
    port = interpolate(environment(services["api"]).get("API_PORT") or "8000")
    assert port == "8000", "the healthcheck and the load balancer assume port 8000"


@pytest.mark.parametrize("name", ["api", "worker"])
def test_api_and_worker_run_at_least_two_replicas(services: dict[str, Any], name: str) -> None:
    replicas = (services[name].get("deploy") or {}).get("replicas", 1)
    assert int(replicas) >= 2, f"{name} has {replicas} replica(s)"
    # A fixed host port or container name cannot be shared by two replicas.
    assert "container_name" not in services[name]
    assert not services[name].get("ports"), f"{name} publishes ports; use the load balancer"


def test_load_balancer_spreads_over_api_replicas(compose: dict[str, Any]) -> None:
    services = compose["services"]
    balancers = [
        name
        for name, svc in services.items()
        if "api" in depends_on(svc) and svc.get("ports") and name not in APP_SERVICES
    ]
    assert balancers, "no service publishes a port in front of the api replicas"
    configs = compose.get("configs") or {}
    for name in balancers:
        sources = [c["source"] if isinstance(c, dict) else c for c in services[name]["configs"]]
        text = "\n".join(str(configs[s].get("content", "")) for s in sources)
        assert re.search(r"\bapi\b", text) and "8000" in text, text


def test_every_dependency_exists(services: dict[str, Any]) -> None:
    conditions = {"service_started", "service_healthy", "service_completed_successfully"}
    for name, service in services.items():
        for dependency, spec in depends_on(service).items():
            assert dependency in services, f"{name} depends on unknown service {dependency!r}"
            assert dependency != name
            assert spec.get("condition", "service_started") in conditions, (name, spec)
            if spec.get("condition") == "service_healthy":
                assert services[dependency].get("healthcheck"), (
                    f"{name} waits for {dependency} to be healthy, but it has no healthcheck"
                )


def test_app_services_wait_for_migrations(services: dict[str, Any]) -> None:
    migrate = depends_on(services["migrate"])
    assert migrate.get("postgres", {}).get("condition") == "service_healthy"
    assert services["migrate"].get("restart", "no") in ("no", "on-failure")
    for name in ("api", "worker"):
        condition = depends_on(services[name]).get("migrate", {}).get("condition")
        assert condition == "service_completed_successfully", (name, condition)


def test_named_volumes_are_declared(compose: dict[str, Any]) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in compose["services"].items():
        for volume in service.get("volumes") or []:
            source = volume.get("source") if isinstance(volume, dict) else volume.split(":")[0]
            if source and not source.startswith((".", "/", "~")):
                assert source in declared, f"{name} mounts undeclared volume {source!r}"


def test_temporal_ui_is_published_on_8233(services: dict[str, Any]) -> None:
    ui = services["temporal-ui"]
    assert "temporalio/ui" in str(ui.get("image"))
    assert any(str(p).endswith("8233:8080") for p in ui.get("ports") or []), ui.get("ports")
    assert service_of_url(interpolate(environment(ui)["TEMPORAL_ADDRESS"] or "")) == "temporal"


# Operator consoles with no authentication of their own: the Temporal UI can reset or
# terminate any workflow, Mailpit shows every mailed token.
OPERATOR_CONSOLES = ("temporal-ui", "mailpit")


@pytest.mark.parametrize("name", OPERATOR_CONSOLES)
def test_operator_consoles_are_published_on_loopback_only(
    services: dict[str, Any], name: str
) -> None:
    ports = [str(p) for p in services[name].get("ports") or []]
    assert ports, f"{name} publishes nothing"
    for port in ports:
        assert port.startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_compose_says_how_to_put_the_consoles_behind_authentication() -> None:
    header = COMPOSE_FILE.read_text().split("\nname:", 1)[0].lower()
    assert "authenticat" in header and "tunnel" in header


def test_dockerfile_builds_the_app_image() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.M)
    assert re.search(r"pip install (--no-deps )?\.", dockerfile)
    assert "download.pytorch.org/whl/cpu" in dockerfile


def test_dockerfile_copies_every_package_the_project_installs() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in project["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (ROOT / "Dockerfile").read_text(), re.M))
    assert packages == copied == {"iaf", "api", "workflows", "activities", "workers", "schemas"}


def test_temporal_gets_the_dev_servers_eager_dispatch_config(services: dict[str, Any]) -> None:
    """Production and the embedded dev server run with the same eager-dispatch settings."""
    from iaf.devstack.temporal import EAGER_CONFIG

    temporal = services["temporal"]
    mounts = [str(v).split(":") for v in temporal.get("volumes", [])]
    path = interpolate(environment(temporal).get("DYNAMIC_CONFIG_FILE_PATH") or "")
    mounted = {target: source for source, target, *_ in mounts}
    source = mounted.get(f"/etc/temporal/{path}")
    assert source is not None, (path, mounts)
    config = yaml.safe_load((ROOT / source).read_text())
    assert {key: entries[0]["value"] for key, entries in config.items()} == EAGER_CONFIG


# --- metrics: Prometheus scrapes every replica, Grafana shows the dashboard -------------


def _prometheus_config(services: dict[str, Any]) -> dict[str, Any]:
    mounts = [str(v).split(":") for v in services["prometheus"].get("volumes", [])]
    mounted = {target: source for source, target, *_ in mounts}
    source = mounted.get("/etc/prometheus/prometheus.yml")
    assert source is not None, mounts
    config: dict[str, Any] = yaml.safe_load((ROOT / source).read_text())
    return config


def test_api_and_worker_serve_metrics_on_the_private_network(services: dict[str, Any]) -> None:
    for name in ("api", "worker"):
        env = {k: interpolate(v or "") for k, v in environment(services[name]).items()}
        assert env.get("METRICS_HOST") == "0.0.0.0", "reachable by Prometheus, not only loopback"
        assert 0 < int(env.get("METRICS_PORT") or "0") < 65536
        published = " ".join(map(str, services[name].get("ports") or []))
        assert env["METRICS_PORT"] not in published, "the metrics port is never published"


def test_prometheus_scrapes_every_api_and_worker_replica(services: dict[str, Any]) -> None:
    assert "prom/prometheus" in str(services["prometheus"].get("image"))
    jobs = {job["job_name"]: job for job in _prometheus_config(services)["scrape_configs"]}
    assert set(jobs) >= {"api", "worker"}, set(jobs)
    for name in ("api", "worker"):
        port = int(interpolate(environment(services[name])["METRICS_PORT"] or "0"))
        (discovery,) = jobs[name]["dns_sd_configs"]
        # One A record per replica: scaling needs no change to the config.
        assert discovery["names"] == [name] and discovery.get("type", "SRV") == "A"
        assert discovery["port"] == port, (name, discovery, port)


def test_grafana_provisions_the_dashboard_on_prometheus(services: dict[str, Any]) -> None:
    grafana = services["grafana"]
    assert "grafana/grafana" in str(grafana.get("image"))
    env = environment(grafana)
    assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", env.get("GF_SECURITY_ADMIN_PASSWORD") or "")
    assert interpolate(env.get("GF_AUTH_ANONYMOUS_ENABLED") or "") == "false"
    mounts = {
        target: source for source, target, *_ in (str(v).split(":") for v in grafana["volumes"])
    }
    provisioning = ROOT / mounts["/etc/grafana/provisioning"]
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert service_of_url(datasource["url"]) == "prometheus" and datasource["uid"] == "prometheus"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "iaf.yml").read_text())["providers"]
    assert ROOT / mounts[provider["options"]["path"]] == ROOT / "deploy" / "grafana" / "dashboards"


def _dashboard_queries() -> list[str]:
    import json

    dashboard = json.loads((ROOT / "deploy" / "grafana" / "dashboards" / "iaf.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert all(p["datasource"]["uid"] == "prometheus" for p in panels)
    return [target["expr"] for panel in panels for target in panel["targets"]]


def test_the_dashboard_uses_the_metrics_our_processes_expose() -> None:
    """Every `iaf_` series a panel queries exists (the Temporal SDK's are checked against a
    live worker in tests/observability/test_metrics.py)."""
    from prometheus_client import REGISTRY

    import iaf.observability.metrics  # noqa: F401  (registers our metrics)

    exposed = {s.name for family in REGISTRY.collect() for s in family.samples}
    exposed |= {f.name for f in REGISTRY.collect() if f.type == "gauge"}  # labelled, no sample yet
    exposed |= {
        f"{family.name}{suffix}"
        for family in REGISTRY.collect()
        if family.type == "histogram"
        for suffix in ("_bucket", "_sum", "_count")
    }
    exposed |= {f"{f.name}_total" for f in REGISTRY.collect() if f.type == "counter"}
    used = {name for expr in _dashboard_queries() for name in re.findall(r"\biaf_\w+", expr)}
    assert used and used <= exposed, f"unknown metrics in the dashboard: {used - exposed}"
    labels = {
        label for expr in _dashboard_queries() for label in re.findall(r"\bjob=\"(\w+)\"", expr)
    }
    assert labels <= {"api", "worker"}, labels
