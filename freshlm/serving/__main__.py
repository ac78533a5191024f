"""``python -m freshlm.serving`` (or ``freshlm-serve``): run the model server."""

from __future__ import annotations

from freshlm.serving.server import main

if __name__ == "__main__":
    raise SystemExit(main())
