"""The web UI's templates and static files (no Python logic: pages live in assay.server.ui).

Every template autoescapes; model output and user input are shown as text, never as markup.
"""

from __future__ import annotations

from pathlib import Path

UI_DIR = Path(__file__).parent
TEMPLATES_DIR = UI_DIR / "templates"
STATIC_DIR = UI_DIR / "static"
