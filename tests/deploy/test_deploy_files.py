"""compose.yaml, Dockerfile and the gateway's systemd unit are consistent with the repository.

No Docker engine runs where the tests run, so compose.yaml is checked as a structure here and,
where a compose client is installed, by ``compose config`` (which needs no engine). The systemd
unit is checked by ``systemd-analyze verify`` where available.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")  # PyYAML comes with amqtt, a project dependency

REPO = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((REPO / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]

# The contract's health endpoints (telemon ingest/alerts/dashboard).
HEALTH_PORTS = {"ingest": 9464, "alerts": 9465, "dashboard": 8000}
# Values for the variables compose.yaml requires, for `compose config`.
DUMMY_ENV = {
    "POSTGRES_PASSWORD": "pg-secret",
    "TELEMON_DB_OWNER_PASSWORD": "owner-secret",
    "TELEMON_DB_APP_PASSWORD": "app-secret",
    "MQTT_INGEST_PASSWORD": "ingest-secret",
    "MQTT_SERVER_PASSWORD": "server-secret",
    "TELEMON_PUBLIC_URL": "https://telemon.example.org",
    "TELEMON_SECRET_KEY": "signing-secret",
}


def test_services_and_healthchecks() -> None:
    assert set(SERVICES) == {"db", "mqtt", "migrate", "ingest", "alerts", "dashboard", "sim"}
    assert SERVICES["sim"]["profiles"] == ["demo"]
    for name in ("db", "mqtt", *HEALTH_PORTS):
        assert SERVICES[name]["healthcheck"]["test"], name
    assert "pg_isready" in SERVICES["db"]["healthcheck"]["test"]
    assert "healthcheck" not in SERVICES["migrate"]  # one-shot: "completed" is its health


def test_python_healthchecks_query_each_service_healthz() -> None:
    for name, port in HEALTH_PORTS.items():
        kind, python, flag, code = SERVICES[name]["healthcheck"]["test"]
        assert (kind, python, flag) == ("CMD", "python", "-c")
        ast.parse(code)  # a syntax error would make the container unhealthy forever
        assert f"'http://127.0.0.1:{port}/healthz'" in code, name
        assert "timeout=" in code


def test_start_order() -> None:
    assert SERVICES["db"]["image"].startswith("${TIMESCALEDB_IMAGE:-timescale/timescaledb:")
    assert SERVICES["mqtt"]["image"].startswith("${MOSQUITTO_IMAGE:-eclipse-mosquitto:")
    assert SERVICES["migrate"]["command"] == ["migrate"]
    assert SERVICES["migrate"]["restart"] == "no"
    assert SERVICES["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    for name in HEALTH_PORTS:
        assert SERVICES[name]["command"] == [name]
        assert SERVICES[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "mqtt": {"condition": "service_healthy"},
        }
    # The simulator seeds the demo's people: the schema must be there first.
    assert SERVICES["sim"]["depends_on"] == {
        "migrate": {"condition": "service_completed_successfully"},
        "mqtt": {"condition": "service_healthy"},
    }


def test_each_service_gets_its_own_mqtt_user() -> None:
    env = {name: SERVICES[name]["environment"] for name in HEALTH_PORTS}
    assert env["ingest"]["TELEMON_MQTT_URL"].startswith("mqtt://ingest:${MQTT_INGEST_PASSWORD:?")
    for name in ("alerts", "dashboard"):
        assert env[name]["TELEMON_MQTT_URL"].startswith("mqtt://server:${MQTT_SERVER_PASSWORD:?")
    assert not any(key.startswith("TELEMON_TWILIO") for key in env["ingest"])
    assert env["dashboard"]["TELEMON_DASHBOARD_HOST"] == "0.0.0.0"
    # The services derive their MQTT client id from the hostname: it must survive recreation.
    for name in HEALTH_PORTS:
        assert SERVICES[name]["hostname"] == name


def test_secrets_are_required_from_env_never_written_down() -> None:
    text = (REPO / "compose.yaml").read_text()
    secret = re.compile(r"PASSWORD|SECRET|TOKEN")
    references = re.findall(r"\$\{([A-Z0-9_]+)(:?[-?])?", text)
    assert references
    for name, operator in references:
        if secret.search(name) and name != "SIM_GATEWAY_PASSWORD":  # demo only, see compose
            assert operator == ":?", f"${{{name}}} must be required with :?"
    for name, service in SERVICES.items():
        for key, value in service.get("environment", {}).items():
            if key.endswith("_FILE"):
                # A secret from a file: one of the Docker secrets this service is granted.
                granted = {f"/run/secrets/{secret}" for secret in service.get("secrets", [])}
                assert value in granted, f"{name}: {key}={value} is not a granted secret"
            elif secret.search(key) and value is not None:
                assert str(value).startswith("${"), f"{key} has a literal value"
    # Each Docker secret is made from a .env value, never written here.
    for definition in COMPOSE["secrets"].values():
        assert set(definition) == {"environment"}, definition


def test_database_has_room_for_parallel_queries() -> None:
    # Docker's default /dev/shm is 64 MB; parallel sorts and hashes need more (see compose.yaml).
    size = SERVICES["db"]["shm_size"]
    number, unit = re.fullmatch(r"(\d+)(mb|gb)", size).groups()
    assert int(number) * (1024 if unit == "gb" else 1) >= 256


def test_bind_mounts_exist_and_broker_files_are_in_them() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (REPO / source).exists(), f"{name} mounts missing {source}"
    assert "./deploy/mosquitto:/mosquitto/config:ro" in SERVICES["mqtt"]["volumes"]
    assert any(v.endswith(":/mosquitto/data") for v in SERVICES["mqtt"]["volumes"])

    conf = (REPO / "deploy" / "mosquitto" / "mosquitto.conf").read_text()
    settings = dict(
        line.split(None, 1) for line in conf.splitlines() if line and not line.startswith("#")
    )
    assert settings["allow_anonymous"] == "false"
    assert settings["persistence"] == "true"
    assert settings["persistence_location"].startswith("/mosquitto/data/")
    assert settings["acl_file"] == "/mosquitto/config/acl"
    assert (REPO / "deploy" / "mosquitto" / "acl").is_file()
    # The password file is made on the server by make-passwd.sh and must never be committed.
    assert settings["password_file"] == "/mosquitto/config/passwd"
    ignored = (REPO / "deploy" / "mosquitto" / ".gitignore").read_text().split()
    assert "/passwd" in ignored and "/certs/" in ignored
    for tls_file in re.findall(r"^#(?:cafile|certfile|keyfile) (\S+)$", conf, re.MULTILINE):
        assert tls_file.startswith("/mosquitto/config/certs/")


def test_dockerfile_installs_every_package_as_non_root() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE) == ["${PYTHON_IMAGE}"] * 2
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert "build-essential" not in final_stage
    assert re.search(r"^USER telemon$", final_stage, re.MULTILINE)
    assert 'ENTRYPOINT ["telemon"]' in final_stage
    # Every package pip installs must be copied into the build and let through .dockerignore.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    packages = [
        p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    ]
    dockerignore = (REPO / ".dockerignore").read_text().split()
    for package in packages:
        assert f"COPY {package} ./{package}" in dockerfile, package
        assert f"!{package}/" in dockerignore, package
    assert "*" in dockerignore  # everything else, .env and deploy/mosquitto/passwd, stays out


def _compose_command() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config_accepts_the_file(tmp_path: Path) -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("no docker compose client installed")
    compose_file = REPO / "compose.yaml"
    if command[0].endswith("docker-compose"):
        # Compose v1 (Debian's docker-compose 1.29) predates the top-level `name:` of the Compose
        # Specification; everything else it validates.
        compose_file = tmp_path / "compose.yaml"
        compose_file.write_text(
            re.sub(r"^name: .*$", "", (REPO / "compose.yaml").read_text(), flags=re.MULTILINE)
        )
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in DUMMY_ENV.items()))
    base = [*command, "--project-directory", str(REPO), "-f", str(compose_file)]
    clean_env = {"PATH": "/usr/bin:/bin:/usr/local/bin", "HOME": str(tmp_path)}

    ok = subprocess.run(
        [*base, "--env-file", str(env_file), "config"],
        capture_output=True,
        text=True,
        env=clean_env,
    )
    assert ok.returncode == 0, ok.stderr
    resolved = yaml.safe_load(ok.stdout)["services"]
    assert resolved["ingest"]["environment"]["TELEMON_MQTT_URL"] == (
        "mqtt://ingest:ingest-secret@mqtt:1883"
    )

    # Without the .env values compose must refuse rather than run with empty passwords.
    empty = tmp_path / "empty.env"
    empty.write_text("")
    refused = subprocess.run(
        [*base, "--env-file", str(empty), "config"], capture_output=True, text=True, env=clean_env
    )
    assert refused.returncode != 0
    assert "POSTGRES_PASSWORD" in refused.stderr


def test_gateway_unit_passes_systemd_analyze(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze not installed")
    unit = (REPO / "deploy" / "telemon-gateway.service").read_text()
    assert "RestrictAddressFamilies=" in unit and "AF_BLUETOOTH" in unit
    assert re.search(r"^Restart=always$", unit, re.MULTILINE)
    assert re.search(r"^ExecStart=/opt/telemon/bin/telemon gateway run$", unit, re.MULTILINE)
    # verify also checks that ExecStart exists: point it at a real program for the check.
    (tmp_path / "telemon-gateway.service").write_text(
        unit.replace("/opt/telemon/bin/telemon gateway run", f"{sys.executable} -V")
    )
    result = subprocess.run(
        [analyze, "verify", "--man=no", "./telemon-gateway.service"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    # systemd-analyze exits 0 on unknown keys and bad values too; they show up as messages.
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stderr


def test_documented_database_commands_never_allocate_a_tty() -> None:
    # `docker compose exec` without -T gives the command a terminal, whose line discipline can
    # rewrite the bytes of a binary dump piped through it.
    sources = [REPO / "docs" / "deployment.md", *sorted((REPO / "deploy").glob("*.sh"))]
    uses = [
        (source.name, match.group(0))
        for source in sources
        for match in re.finditer(r"compose exec(?: -\S+)* \S+", source.read_text())
    ]
    assert any(name == "pg-common.sh" for name, _ in uses), "the scripts no longer use exec"
    for name, use in uses:
        assert " -T" in use, f"{name}: {use}"
