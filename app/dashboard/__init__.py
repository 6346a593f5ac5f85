"""The supervision dashboard's assets: Jinja2 templates and static files shipped inside the package
(pyproject `package-data`), so a wheel or the Docker image serves them with no outside network."""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATES_DIR = HERE / "templates"
STATIC_DIR = HERE / "static"
STATIC_URL = "/static/dashboard"  # where app.main mounts STATIC_DIR
