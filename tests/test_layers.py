"""The layers hold: import-linter's contracts in pyproject.toml (DESIGN.md, "Layers") are kept.

CI runs `lint-imports` after ruff; this runs it too, so that the README's test command covers it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


@pytest.mark.skipif(not LINT_IMPORTS.is_file(),
                    reason=f"import-linter is not installed ({LINT_IMPORTS} is absent); pip install -e '.[dev]'")
def test_import_contracts_are_kept():
    # cwd: lint-imports reads [tool.importlinter] from the pyproject.toml there; --no-cache: no cache dir
    done = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"lint-imports found imports that break the layers:\n{done.stdout}\n{done.stderr}"
    assert "0 broken" in done.stdout  # it checked contracts (a config it could not find would not say so)
