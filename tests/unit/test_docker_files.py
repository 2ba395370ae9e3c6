"""The Dockerfile, docker-compose.yml and .dockerignore, read by parsers.

No Docker engine runs where the tests run (CI builds the image only when
`docker info` answers, see `.ci/run`), so these tests check what a build and
`docker compose` would rely on: the Dockerfile through Docker's own parser
(the `dockerfile` package wraps BuildKit's), the compose file as YAML.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import dockerfile
import pytest
import yaml

from chatmock import docker_entrypoint

ROOT = Path(__file__).resolve().parents[2]
ENTRYPOINT = ["python", "-m", "chatmock.docker_entrypoint"]
_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}")


def instructions() -> list[dockerfile.Command]:
    return list(dockerfile.parse_file(str(ROOT / "Dockerfile")))


def stages() -> list[list[dockerfile.Command]]:
    """The instructions of each stage, FROM first; global ARGs are left out."""
    found: list[list[dockerfile.Command]] = []
    for command in instructions():
        if command.cmd == "FROM":
            found.append([])
        if found:
            found[-1].append(command)
    return found


def last(stage: list[dockerfile.Command], name: str) -> dockerfile.Command:
    matching = [command for command in stage if command.cmd == name]
    assert matching, f"no {name} in the stage"
    return matching[-1]


def global_args() -> dict[str, str]:
    args = {}
    for command in instructions():
        if command.cmd == "FROM":
            break
        if command.cmd == "ARG":
            name, _, value = command.value[0].partition("=")
            args[name] = value
    return args


def interpolate(text: str, env: dict[str, str]) -> str:
    """`${NAME}`, `${NAME-default}` and `${NAME:-default}`, as Compose and Docker expand them."""
    return _VARIABLE.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), text)


def test_two_stages_on_one_base_pinned_by_version() -> None:
    first, *_, runtime = stages()
    assert len(stages()) == 2
    assert first[0].value[1:] == ("AS", "build")
    base = interpolate(first[0].value[0], global_args())
    assert re.fullmatch(r"python:3\.1[1-9]\.\d+-slim(-\w+)?", base), base
    assert runtime[0].value[0] == first[0].value[0]


def test_the_build_stage_makes_wheels_and_the_runtime_installs_only_those() -> None:
    build, runtime = stages()
    assert "pip wheel --wheel-dir /wheels ." in last(build, "RUN").value[0]
    install = next(c for c in runtime if c.cmd == "RUN" and "pip install" in c.value[0])
    assert "--mount=type=bind,from=build,source=/wheels,target=/wheels" in install.flags
    assert "--no-index --find-links /wheels chatmock" in install.value[0]


def test_copied_sources_exist_and_are_in_the_build_context() -> None:
    build = stages()[0]
    sources = [part for command in build if command.cmd == "COPY"
               for part in command.value[:-1]]
    readme = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["readme"]
    assert {"pyproject.toml", readme, "chatmock"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert not ignored_by_dockerignore(source), f"{source} is excluded from the context"


def ignored_by_dockerignore(path: str) -> bool:
    """Docker's rule: the last matching pattern decides, `!` re-includes."""
    ignored = False
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        include = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, pattern.replace("**/", "")):
            ignored = not include
    return ignored


def test_dockerignore_keeps_tests_caches_and_credentials_out() -> None:
    for path in ("tests", ".venv", "bench", ".git", "auth.json", "chatmock/__pycache__"):
        assert ignored_by_dockerignore(path), path


def test_runs_as_the_image_user_never_root() -> None:
    runtime = stages()[-1]
    user = last(runtime, "USER").value[0]
    uid, _, gid = user.partition(":")
    assert uid not in ("0", "root") and gid not in ("0", "root")
    assert (int(uid), int(gid)) == (docker_entrypoint.IMAGE_UID, docker_entrypoint.IMAGE_GID)
    setup = next(c for c in runtime if c.cmd == "RUN" and "useradd" in c.value[0]).value[0]
    assert f"--uid {uid}" in setup and f"--owner {uid}" in setup


def test_data_volume_holds_the_auth_and_state_files() -> None:
    runtime = stages()[-1]
    env = dict(zip(last(runtime, "ENV").value[::2], last(runtime, "ENV").value[1::2],
                   strict=True))
    assert env["CHATGPT_LOCAL_HOME"] == "/data"
    assert docker_entrypoint.CONTAINER_DEFAULTS["CHATGPT_LOCAL_HOME"] == "/data"
    assert last(runtime, "VOLUME").value == ("/data",)


def test_exposes_the_api_and_the_login_callback() -> None:
    assert set(last(stages()[-1], "EXPOSE").value) == {"8000", "1455"}


def test_entrypoint_healthcheck_and_command_name_real_code() -> None:
    runtime = stages()[-1]
    entry = last(runtime, "ENTRYPOINT")
    assert entry.json and list(entry.value) == ENTRYPOINT
    assert importlib.util.find_spec("chatmock.docker_entrypoint") is not None
    assert last(runtime, "CMD").value == ("serve",)
    check = last(runtime, "HEALTHCHECK")
    assert check.value == ("CMD", *ENTRYPOINT, "healthcheck")
    assert {"--interval=30s", "--timeout=5s"} <= set(check.flags)


# --- docker-compose.yml ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


def service(compose: dict[str, Any], name: str, env: dict[str, str] | None = None
            ) -> dict[str, Any]:
    """A service with its variables expanded as Compose would with `env`."""
    def expand(value: Any) -> Any:
        if isinstance(value, str):
            return interpolate(value, env or {})
        if isinstance(value, list):
            return [expand(item) for item in value]
        if isinstance(value, dict):
            return {key: expand(item) for key, item in value.items()}
        return value

    result: dict[str, Any] = expand(compose["services"][name])
    return result


def test_compose_server_publishes_on_host_loopback_by_default(compose: dict[str, Any]) -> None:
    server = service(compose, "chatmock")
    assert "profiles" not in server
    assert server["command"] == ["serve"]
    assert server["ports"] == ["127.0.0.1:8000:8000"]
    chosen = service(compose, "chatmock", {"CHATMOCK_PUBLISH_HOST": "0.0.0.0",
                                           "CHATMOCK_PORT": "9000"})
    assert chosen["ports"] == ["0.0.0.0:9000:8000"]


def test_compose_passes_the_access_token_by_environment(compose: dict[str, Any]) -> None:
    env = service(compose, "chatmock", {"CHATMOCK_ACCESS_TOKEN": "s3cret"})["environment"]
    assert env["CHATGPT_LOCAL_ACCESS_TOKEN"] == "s3cret"
    assert service(compose, "chatmock")["environment"]["CHATGPT_LOCAL_ACCESS_TOKEN"] == ""


def test_compose_login_profile_maps_the_callback_port(compose: dict[str, Any]) -> None:
    login = service(compose, "login")
    assert login["profiles"] == ["login"]
    assert login["command"] == ["login"]
    assert login["ports"] == ["127.0.0.1:1455:1455"]
    assert login["environment"]["CHATGPT_LOCAL_LOGIN_BIND"] == "0.0.0.0"
    assert login["stdin_open"] is True and login["tty"] is True
    assert "CHATGPT_LOCAL_LOGIN_BIND" not in service(compose, "chatmock")["environment"]


def test_compose_services_share_the_image_volume_and_user(compose: dict[str, Any]) -> None:
    for name in ("chatmock", "login"):
        one = service(compose, name, {"PUID": "1234", "PGID": "99"})
        assert one["build"] == "." and (ROOT / "Dockerfile").exists()
        assert one["volumes"] == ["chatmock-data:/data"]
        assert one["user"] == "1234:99"
        assert (one["environment"]["PUID"], one["environment"]["PGID"]) == ("1234", "99")
        assert service(compose, name)["user"] == "1000:1000"
    assert "chatmock-data" in compose["volumes"]


def test_compose_gives_the_server_time_to_drain(compose: dict[str, Any]) -> None:
    server = service(compose, "chatmock")
    assert server["init"] is True
    assert int(server["stop_grace_period"].rstrip("s")) > 15  # --shutdown-timeout's default
