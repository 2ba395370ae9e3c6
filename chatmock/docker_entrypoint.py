"""The container's entry point: `python -m chatmock.docker_entrypoint [COMMAND] [ARGS...]`.

The image (`Dockerfile` at the repository root) runs this as its ENTRYPOINT,
`serve` being the default command. It prepares the process and then replaces
itself (exec) with the command, so that signals reach chatmock directly:

* `serve`, `login`, `info`, `doctor` (or any `--flag`) run chatmock with the
  same arguments; anything else (`sh`) runs as given.
* Settings reach chatmock through its own environment variables, of which the
  image sets container defaults only where none is given: `CHATGPT_LOCAL_HOME`
  `/data` (auth.json and state files, a volume), `CHATGPT_LOCAL_HOST`
  `0.0.0.0` (inside the container; what the host publishes is compose's
  choice), `CHATGPT_LOCAL_LOGIN_BIND` `0.0.0.0` (the callback of `login`
  must be reachable through the published port 1455). The access token comes
  the same way (`CHATGPT_LOCAL_ACCESS_TOKEN`, or a secret file named by
  `CHATGPT_LOCAL_ACCESS_TOKEN_FILE`): `serve` refuses a non-loopback bind
  without one.
* `login` gets `--no-browser`: there is no browser in the container.
* `healthcheck` (the image's HEALTHCHECK) asks `GET /health` of the server in
  this container and exits 0 when chatmock answers it.

User ids. The image's user is 1000:1000 and the process is never root while it
serves. `PUID`/`PGID` (the convention of many images: "run as my host user, so
that a bind-mounted data folder stays mine") are honoured in two ways:

* started as a non-root user (the image's default, or `docker run --user`,
  compose `user:`), the ids must be the ones the container runs with; a
  mismatch is refused with the flag that fixes it, since only root can switch;
* started as root (`--user 0`), the data folder and its files are given to
  PUID:PGID (default 1000:1000) and the process drops to those ids before
  anything else runs. PUID 0 is refused.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path

IMAGE_UID = IMAGE_GID = 1000
CHATMOCK_COMMANDS = frozenset({"serve", "login", "info", "doctor"})
CONTAINER_DEFAULTS = {"CHATGPT_LOCAL_HOME": "/data", "CHATGPT_LOCAL_HOST": "0.0.0.0"}
LOGIN_DEFAULTS = {"CHATGPT_LOCAL_LOGIN_BIND": "0.0.0.0"}
DEFAULT_PORT = 8000
HEALTH_TIMEOUT = 4.0
EXIT_CONFIG = 2


class EntrypointError(Exception):
    """The container cannot start as configured; the message says what to change."""


@dataclass(frozen=True, slots=True)
class Identity:
    uid: int
    gid: int


def requested_identity(env: Mapping[str, str]) -> Identity | None:
    """PUID/PGID from the environment; None when neither is set (PGID defaults to PUID)."""
    uid_text, gid_text = env.get("PUID", "").strip(), env.get("PGID", "").strip()
    if not uid_text and not gid_text:
        return None
    uid = _id_number("PUID", uid_text) if uid_text else IMAGE_UID
    gid = _id_number("PGID", gid_text) if gid_text else uid
    return Identity(uid, gid)


def _id_number(name: str, text: str) -> int:
    if not (text.isascii() and text.isdigit()):  # int() refuses "¹", which isdigit() allows
        raise EntrypointError(f"{name}={text!r} is not a numeric id")
    return int(text)


def identity_to_run_as(current: Identity, requested: Identity | None) -> Identity | None:
    """The ids to switch to (None: stay as we are); refuses what cannot or must not be."""
    if current.uid != 0:
        if requested is not None and requested != current:
            raise EntrypointError(
                f"PUID/PGID ask for {requested.uid}:{requested.gid} but the container runs as "
                f"{current.uid}:{current.gid}, and only root can switch. Start it with "
                f"--user {requested.uid}:{requested.gid} (compose: user: "
                f"\"{requested.uid}:{requested.gid}\"), or with --user 0 to let this "
                "entrypoint switch after taking over the data folder.")
        return None
    target = requested or Identity(IMAGE_UID, IMAGE_GID)
    if target.uid == 0:
        raise EntrypointError("PUID=0 would serve as root; choose the id of an ordinary user")
    return target


def take_over(home: Path, owner: Identity) -> None:
    """Give `home` and everything below it to `owner` (links themselves, never their targets)."""
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    _own(home, owner)
    for folder, subfolders, files in os.walk(home):
        for name in (*subfolders, *files):
            _own(Path(folder, name), owner)


def _own(path: Path, owner: Identity) -> None:
    info = path.lstat()
    if (info.st_uid, info.st_gid) != (owner.uid, owner.gid):
        os.chown(path, owner.uid, owner.gid, follow_symlinks=False)


def drop_privileges(owner: Identity) -> None:
    os.setgroups([owner.gid])
    os.setgid(owner.gid)
    os.setuid(owner.uid)


def check_home(home: Path, current: Identity) -> None:
    """The data folder must exist and be writable before chatmock stores tokens there."""
    if home.is_dir() and os.access(home, os.R_OK | os.W_OK | os.X_OK):
        return
    problem = "does not exist" if not home.exists() else "is not writable"
    raise EntrypointError(
        f"the data folder {home} {problem} for user {current.uid}:{current.gid}. For a "
        f"bind-mounted folder, create it on the host and give it to this user (chown "
        f"{current.uid}:{current.gid} FOLDER), set PUID/PGID to its owner with a matching "
        "--user, or start once with --user 0 so that this entrypoint takes it over.")


def command_line(args: Sequence[str], env: MutableMapping[str, str]) -> list[str]:
    """What to exec for `args`; fills the container defaults into `env`."""
    for name, value in CONTAINER_DEFAULTS.items():
        env.setdefault(name, value)
    argv = list(args) or ["serve"]
    first = argv[0]
    if first not in CHATMOCK_COMMANDS and not first.startswith("-"):
        return argv
    if first == "login":
        for name, value in LOGIN_DEFAULTS.items():
            env.setdefault(name, value)
        if "--no-browser" not in argv and "--headless" not in argv:
            argv.insert(1, "--no-browser")
    return [sys.executable, "-m", "chatmock", *argv]


def healthcheck(env: Mapping[str, str]) -> int:
    """0 when chatmock answers `GET /health` on this container's port, else 1."""
    port = env.get("CHATGPT_LOCAL_PORT", "").strip() or str(DEFAULT_PORT)
    host = env.get("CHATGPT_LOCAL_HOST", "").strip()
    if host in ("", "0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        with urllib.request.urlopen(f"http://{authority}/health",
                                    timeout=HEALTH_TIMEOUT) as reply:
            document = json.loads(reply.read())
    except (OSError, ValueError) as exc:
        print(f"healthcheck: http://{authority}/health: {exc}", file=sys.stderr)
        return 1
    if isinstance(document, dict) and document.get("service") == "chatmock":
        return 0
    print(f"healthcheck: http://{authority}/health is not chatmock's", file=sys.stderr)
    return 1


def prepare(env: MutableMapping[str, str]) -> None:
    """Settle the user ids and the data folder; raises EntrypointError."""
    current = Identity(os.geteuid(), os.getegid())
    home = Path(env.get("CHATGPT_LOCAL_HOME") or CONTAINER_DEFAULTS["CHATGPT_LOCAL_HOME"])
    target = identity_to_run_as(current, requested_identity(env))
    if target is not None:
        take_over(home, target)
        drop_privileges(target)
        current = target
    check_home(home, current)


def main(args: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if args is None else args)
    env = os.environ
    if argv[:1] == ["healthcheck"]:
        return healthcheck(env)
    try:
        command = command_line(argv, env)
        prepare(env)
    except EntrypointError as exc:
        print(f"chatmock container: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    sys.stdout.flush()
    try:
        os.execvpe(command[0], command, env)  # replaces this process
    except OSError as exc:
        print(f"chatmock container: cannot run {command[0]!r}: {exc.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    raise SystemExit(main())
