"""Commands keep third-party noise away from the user: ocrdet-compare never loads Paddle, ocrdet-extract does not
pass on Paddle's import-time ccache warning."""
from __future__ import annotations

import subprocess
import sys

from tests.deploy.test_export import ROOT, cli_env


def test_compare_does_not_import_paddle(tmp_path) -> None:
    code = (
        "import sys\nfrom ocrdet.cli.compare import main\n"
        f"try:\n    main(['--tracking-uri', 'sqlite:///{tmp_path}/mlflow.db'])\nexcept SystemExit:\n    pass\n"
        "print('paddle' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=cli_env(), capture_output=True, text=True,
                          timeout=300)  # fmt: skip
    assert done.stdout.strip().splitlines()[-1] == "False", done.stdout + done.stderr


def test_extract_is_quiet(tmp_path) -> None:
    done = subprocess.run([sys.executable, "-m", "ocrdet.cli.extract", str(tmp_path / "none.pdparams"), "--model",
                           "Student", "-o", str(tmp_path / "out.pdparams")],
                          cwd=ROOT, env=cli_env(), capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode != 0  # no such checkpoint: the error, and nothing from Paddle's import
    assert "No ccache found" not in done.stderr
