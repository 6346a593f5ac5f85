"""The lock files in requirements/ must satisfy pyproject.toml: a dependency added or raised without
relocking would otherwise install on a newcomer's machine differently from CI (or not at all)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def pins(lock: Path) -> dict[str, list[tuple[str, str | None]]]:
    """name → [(version, marker)]: a universal lock may pin one package differently per Python."""
    found: dict[str, list[tuple[str, str | None]]] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        spec, _, marker = line.partition(";")
        name, _, version = spec.partition("==")
        found.setdefault(canonicalize_name(name.split("[")[0]), []).append((version.strip(), marker.strip() or None))
    return found


@pytest.mark.parametrize(
    ("lock", "groups"),
    [("base.txt", ["dependencies"]), ("test.txt", ["dependencies", "test"])],
)
def test_lock_satisfies_pyproject(lock: str, groups: list[str]) -> None:
    locked = pins(ROOT / "requirements" / lock)
    wanted = [
        Requirement(text)
        for group in groups
        for text in (PROJECT["dependencies"] if group == "dependencies" else PROJECT["optional-dependencies"][group])
    ]
    environment = default_environment()
    problems = []
    for requirement in wanted:
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        versions = locked.get(canonicalize_name(requirement.name))
        if not versions:
            problems.append(f"{requirement.name} is not in {lock}")
        elif not any(requirement.specifier.contains(version, prereleases=True) for version, _ in versions):
            problems.append(f"{requirement} but {lock} pins {[v for v, _ in versions]}")
    assert problems == [], "relock (see requirements/README.md): " + "; ".join(problems)
