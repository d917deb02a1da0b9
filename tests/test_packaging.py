"""Waymark installs as one namespace, ``waymark``, and the code imports itself only through it."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[1]
PACKAGES = ("models", "training", "fairness", "service")


def test_the_wheel_installs_only_the_waymark_namespace_with_its_data(tmp_path: Path) -> None:
    source = tmp_path / "source"  # a copy, so the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for name in (*PACKAGES, "waymark"):
        shutil.copytree(
            ROOT / name, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(tmp_path), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("waymark-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/")[0] for n in names} == {"waymark", wheel.name.split("-py")[0] + ".dist-info"}
    for data in (
        "waymark/fairness/default_policy.toml",
        "waymark/fairness/templates/report.html.j2",
        "waymark/service/db/grants.sql",
        "waymark/service/db/migrations/env.py",
        "waymark/service/db/migrations/versions/0001_initial_service_schema.py",
    ):
        assert data in names
    assert {f"waymark/{p}/__init__.py" for p in PACKAGES} <= set(names)


def test_the_packages_are_the_top_level_folders_linked_into_the_namespace() -> None:
    for package in PACKAGES:
        link = ROOT / "waymark" / package
        assert link.is_symlink() and link.resolve() == (ROOT / package).resolve()


def test_no_module_imports_a_package_by_its_bare_folder_name() -> None:
    bare = []
    for path in sorted(ROOT.glob("*/**/*.py")):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in {".venv", "build"} or (
            relative.parts[0] == "waymark" and len(relative.parts) > 2
        ):
            continue  # the links into the namespace repeat the top-level folders
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            bare += [f"{relative}: {n}" for n in names if n.split(".")[0] in PACKAGES]
    assert bare == []
