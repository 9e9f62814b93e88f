"""Prepares a fresh database as upstream's scripts/start/app.sh does:
`alembic upgrade head`, then each init script given as an argument, in order.

All in one Python process because importing the app takes seconds each time.
Run from the backend folder, with PYTHONPATH set to it and the backend's
settings in the environment. Each step starts with a line "== STEP", so the
last such line of the output names a failing step.
"""

import runpy
import sys

from alembic.config import main as alembic


def main() -> None:
    print("== alembic upgrade head", flush=True)
    alembic(argv=["upgrade", "head"])
    for script in sys.argv[1:]:
        print(f"== {script}", flush=True)
        runpy.run_path(script, run_name="__main__")
    print("== done", flush=True)


if __name__ == "__main__":
    main()
