"""Run Python as on a base install (`pip install assay`, no extras): the server extra's packages
and the model providers' SDKs cannot be imported, as if they were not installed.

    python tests/base_install.py -c "import assay"
    python tests/base_install.py -m assay.cli eval evals/ --no-send
"""

from __future__ import annotations

import runpy
import sys
from collections.abc import Sequence
from importlib.abc import MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

#: What `pip install 'assay[server]'`, `[openai]` and `[anthropic]` add to the base install.
NOT_INSTALLED = frozenset(
    {
        "sqlalchemy",
        "alembic",
        "psycopg",
        "fastapi",
        "starlette",
        "uvicorn",
        "argon2",
        "multipart",
        "python_multipart",
        "openai",
        "anthropic",
    }
)


class Hiding(MetaPathFinder):
    """One of the interpreter's finders, blind to the packages that are "not installed": they
    are then missing exactly as uninstalled ones are (`importlib.util.find_spec` says None, an
    import raises ModuleNotFoundError)."""

    def __init__(self, finder: Any) -> None:
        self.finder = finder

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: ModuleType | None = None,
    ) -> ModuleSpec | None:
        if fullname.partition(".")[0] in NOT_INSTALLED:
            return None
        find = getattr(self.finder, "find_spec", None)
        return None if find is None else find(fullname, path, target)

    def invalidate_caches(self) -> None:
        invalidate = getattr(self.finder, "invalidate_caches", None)
        if invalidate is not None:
            invalidate()


def main(mode: str, target: str, *rest: str) -> None:
    sys.meta_path[:] = [Hiding(finder) for finder in sys.meta_path]
    if mode == "-c":
        sys.argv = ["-c", *rest]
        exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})
    elif mode == "-m":
        sys.argv = [target, *rest]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        raise SystemExit("usage: base_install.py -c CODE | -m MODULE [ARGS...]")


if __name__ == "__main__":
    main(*sys.argv[1:])
