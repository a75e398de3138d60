"""GET / and GET /console/{asset+}: the web console's page and files (no token needed)."""

from pathlib import Path
from typing import Any

from jobcore.console import Console

CONSOLE = Console(Path(__file__).parent / "assets")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return CONSOLE.answer(event)
