"""docker-compose.yml runs the same image and commands as a laptop (no Docker engine here,
so the file is checked by parsing it)."""

from __future__ import annotations

import yaml
from typer.main import get_command

from toolkit.cli import app as cli_app
from toolkit.settings import REPO_ROOT


def load_compose() -> dict:
    return yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def test_compose_has_postgres_web_and_worker():
    services = load_compose()["services"]

    assert {"postgres", "web", "worker"} <= services.keys()
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["web"]["command"][:2] == ["toolkit", "serve"]
    assert services["worker"]["command"] == ["toolkit", "worker"]


def test_compose_services_use_one_image_and_postgres():
    services = load_compose()["services"]
    toolkit_services = [s for name, s in services.items() if name != "postgres"]

    assert len({s["image"] for s in toolkit_services}) == 1
    for service in toolkit_services:
        url = service["environment"]["TOOLKIT_DATABASE_URL"]
        assert url.startswith("postgresql+psycopg://") and "@postgres:5432/" in url
        assert service["environment"]["TOOLKIT_ENV"] == "production"


def test_compose_commands_exist_in_the_cli():
    commands = get_command(cli_app).commands  # type: ignore[attr-defined]
    for service in load_compose()["services"].values():
        command = service.get("command")
        if not command or command[0] != "toolkit":
            continue
        assert command[1] in commands, f"docker-compose runs unknown command {command}"
        if command[1] == "db":
            assert command[2] in commands["db"].commands  # type: ignore[attr-defined]


def test_dockerfile_installs_the_package_and_serves():
    dockerfile = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")

    assert "FROM python:3.11" in dockerfile
    assert "pip install" in dockerfile
    assert '"toolkit", "serve"' in dockerfile


def test_dockerfile_copies_only_what_builds_the_package_and_it_exists():
    # Migrations and config defaults are package data; copying them beside it again would
    # hide a wheel that lacks them.
    copies = [line.split()[1:-1] for line in (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8").splitlines()
              if line.startswith("COPY ")]
    sources = {source for sources in copies for source in sources}

    assert sources == {"pyproject.toml", "README.md", "LICENSE", "NOTICE", "toolkit"}
    assert all((REPO_ROOT / source).exists() for source in sources)
