"""`python -m chatmock.build`: chatmock as one executable file for this platform.

PyInstaller does the work. It is a build-time tool, installed with the `build`
extra (`pip install -e '.[build]'`) and imported only here, never by the
server. The result runs without Python installed: `dist/chatmock --version`,
`dist/chatmock serve`, and every other command.

What PyInstaller cannot see by itself is named explicitly:

* chatmock loads some of its modules and dependencies on first use (the
  routes, `sqlite3` for the response store; the `login`, `info` and `doctor`
  commands): every module of the package goes in as a hidden import, with
  `HIDDEN_IMPORTS` beside them;
* the base instruction texts (`chatmock.prompts`, the top-level prompts/ folder
  mapped in by pyproject) are collected as data;
* what only tests and builds use stays out: `chatmock.testing`, this module,
  the container's entry point; pyjwt and `cryptography`, which only the fakes
  use (chatmock reads the claims of its tokens itself, see auth/tokens.py);
  pytest and what it brings (trio.testing imports it when it is there);
  setuptools; and cffi, which trio needs on Windows only. Without them (and
  stripped) the Linux executable is about 10 MB instead of 26.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import chatmock

HIDDEN_IMPORTS = ("sqlite3", "h11", "h2", "hpack", "hyperframe", "wsproto")
LEFT_OUT_MODULES = ("chatmock.testing", "chatmock.build", "chatmock.docker_entrypoint")
EXCLUDED_PACKAGES = ("jwt", "cryptography", "pytest", "_pytest", "pygments", "hypothesis",
                     "setuptools", "pkg_resources", "distutils", "tkinter",
                     *(() if sys.platform == "win32" else ("cffi", "pycparser")))


def package_modules() -> list[str]:
    """Every module of the chatmock package the executable needs, by name."""
    inside = pkgutil.walk_packages(chatmock.__path__, prefix="chatmock.")
    return sorted(["chatmock", *(module.name for module in inside
                                 if not module.name.startswith(LEFT_OUT_MODULES))])


def prompts_folder() -> Path:
    """The prompts/ folder (the `chatmock.prompts` package, mapped in by pyproject): copied
    in whole, since PyInstaller's module search does not follow that mapping."""
    return Path(str(resources.files("chatmock.prompts")))


def pyinstaller_arguments(name: str, dist: Path, work: Path) -> list[str]:
    entry = Path(chatmock.__file__).with_name("__main__.py")
    arguments = [str(entry), "--onefile", "--name", name, "--noconfirm",
                 "--log-level", "WARN", "--distpath", str(dist), "--workpath", str(work),
                 "--specpath", str(work),
                 "--add-data", f"{prompts_folder()}{os.pathsep}chatmock/prompts"]
    if sys.platform != "win32":
        arguments.append("--strip")  # symbol tables: half of libpython's size
    for module in (*package_modules(), *HIDDEN_IMPORTS):
        arguments += ["--hidden-import", module]
    for package in (*EXCLUDED_PACKAGES, *LEFT_OUT_MODULES):
        arguments += ["--exclude-module", package]
    return arguments


def executable_path(dist: Path, name: str) -> Path:
    return dist / (name + ".exe" if sys.platform == "win32" else name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chatmock.build",
                                     description="Build chatmock as one executable file for "
                                                 "this platform (needs the `build` extra).")
    parser.add_argument("--dist-dir", type=Path, default=Path("dist"),
                        help="where the executable goes (default: dist)")
    parser.add_argument("--work-dir", type=Path, default=Path("build", "pyinstaller"),
                        help="PyInstaller's working files (default: build/pyinstaller)")
    parser.add_argument("--name", default="chatmock", help="file name of the executable")
    args = parser.parse_args(argv)
    try:
        pyinstaller = importlib.import_module("PyInstaller.__main__")
    except ImportError:
        print("PyInstaller is not installed: pip install -e '.[build]'", file=sys.stderr)
        return 1
    pyinstaller.run(pyinstaller_arguments(args.name, args.dist_dir.resolve(),
                                          args.work_dir.resolve()))
    print(executable_path(args.dist_dir, args.name))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
