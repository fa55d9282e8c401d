"""The README's commands, run as a user types them.

Every line of every ```bash block in README.md is a test, in README order, in one fresh working directory (a user
following the README from top to bottom): `../shared` beside it is a link to the data and weights, `~` is a fresh
home. Nothing is pinned that a user would not pin (no `hydra.run.dir`, no `hydra.sweep.dir`, no tracking URI):
only size overrides are appended (`trainer.max_steps=2`, tiny synthetic data, few validation images, the path of
the shared data), and a `<timestamp>` stands for the newest entry of that folder, as the user would read it off.
`hydra.launcher.cluster=local` is appended to the SLURM sweep so that it runs through submitit's local executor.

Blocks that cannot run here say why in a `<!-- readme-test: skip <reason> -->` line right above them (GPUs, a
second node); ```sh blocks need the network and are not run. The first command's `python3 -m venv ... && pip
install -e ".[dev]" &&` prefix is exactly what `.ci/run` does before it runs these tests, and `python -m pytest -q`
is that test run itself.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SHARED = ROOT.parent / "shared"
INSTALL_PREFIX = 'python3 -m venv .venv && . .venv/bin/activate && pip install -e ".[dev]" && '
SKIP_MARK = re.compile(r"<!--\s*readme-test:\s*skip\s+(.*?)\s*-->")

# Appended to training commands so that each finishes in seconds: the synthetic default shrunk, or the ICDAR2015
# recipes cut to two steps of tiny crops and one evaluation (at step 2) of two validation images at a small size.
SYNTHETIC_SIZE = [
    "data.crop_size=64", "data.train.image_size=64", "data.val.image_size=64", "data.batch_size=2",
    "data.num_workers=0", "data.train.num_samples=4", "data.val.num_samples=2", "trainer.max_steps=2",
]
ICDAR_SIZE = [
    "data.crop_size=64", "data.batch_size=2", "data.num_workers=0", "data.eval_num_workers=0",
    "trainer.max_steps=2", "trainer.val_check_interval=2", "trainer.limit_val_batches=2",
    "data.val_transforms.resize.limit_side_len=64",
    f"data.root={SHARED / 'data' / 'icdar2015'}",
]
EVAL_SIZE = ["trainer.limit_val_batches=3"]


@dataclass
class Command:
    text: str  # as in the README (continuation lines joined, comments removed)
    line: int  # README line number of its first line
    section: str
    skip: str | None

    @property
    def id(self) -> str:
        return f"L{self.line}:{self.text[:60]}"


def _strip_comment(line: str) -> str:
    """The line without a shell comment (a `#` at a word start, outside quotes)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def readme_commands(text: str) -> list[Command]:
    commands: list[Command] = []
    section, skip, pending_skip, in_bash, buffer, start = "", None, None, False, "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not in_bash:
            if raw.startswith("## "):
                section = raw[3:].strip()
            mark = SKIP_MARK.search(raw)
            if mark:
                pending_skip = mark.group(1)
            elif raw.strip() == "```bash":
                in_bash, skip, pending_skip = True, pending_skip, None
            elif raw.strip():
                pending_skip = None
            continue
        if raw.strip() == "```":
            in_bash = False
            continue
        line = _strip_comment(raw)
        if not buffer:
            start = number
        if line.endswith("\\"):
            buffer += line[:-1].rstrip() + " "
            continue
        buffer += line.strip()
        if buffer.strip():
            commands.append(Command(buffer.strip(), start, section, skip))
        buffer = ""
    return commands


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def test_the_readme_has_commands_to_run():
    # the contract: the first command sets up and runs the main job, the second runs the tests
    assert COMMANDS[0].text == INSTALL_PREFIX + "ocrdet-train"
    assert COMMANDS[1].text == "python -m pytest -q"
    runnable = " ".join(c.text for c in COMMANDS if c.skip is None)
    for tool in ("ocrdet-train", "ocrdet-eval", "ocrdet-export", "ocrdet-predict", "ocrdet-compare"):
        assert tool in runnable
    # the three sweep launchers and a sweep resumed
    for launcher in ("ocrdet-train --multirun neck=", "hydra/launcher=parallel", "hydra/launcher=slurm", "resume=auto"):
        assert launcher in runnable


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A user's fresh working directory with `../shared` beside it, and an empty home."""
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: the README's commands use its data and weights")
    base = tmp_path_factory.mktemp("readme")
    (base / "shared").symlink_to(SHARED.resolve())
    (base / "home").mkdir()
    (base / "work").mkdir()
    return base / "work"


def _newest(folder: Path) -> str:
    entries = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert entries, f"{folder}: nothing to stand for <timestamp>"
    return entries[-1]


def fill_placeholders(text: str, cwd: Path) -> str:
    def newest(match: re.Match) -> str:
        return match.group(1) + _newest(cwd / match.group(1))

    text = re.sub(r"([^\s='\"]+/)<timestamp>", newest, text)
    unknown = re.findall(r"<[a-z_ ]+>", text)
    assert not unknown, f"README command has placeholders a user cannot type as they are: {unknown}"
    return text


def size_overrides(text: str) -> list[str]:
    if re.search(r"(^|\s)ocrdet-train\b", text):
        icdar = re.search(r"data=icdar2015|experiment=ppocrv3_det", text)
        extra = ["hydra.launcher.cluster=local"] if "hydra/launcher=slurm" in text else []
        return [*(ICDAR_SIZE if icdar else SYNTHETIC_SIZE), *extra]
    if re.search(r"(^|\s)ocrdet-eval\b", text):
        return EVAL_SIZE
    return []


def _run(command: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "HOME": str(cwd.parent / "home"),
        # the console scripts of the interpreter running the tests (its venv need not be activated)
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONWARNINGS": "ignore",
    }
    return subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _sweep_children(cwd: Path, command: str) -> None:
    """After a README sweep: one MLflow parent for its sweep dir, with one finished child per job dir, and the
    parent carrying the best child's metric."""
    from mlflow.tracking import MlflowClient

    task = re.search(r"experiment=(ppocrv3_det_\w+)", command)
    sweeps = cwd / "outputs" / (task.group(1) if task else "train") / "multiruns"
    sweep_dir = sweeps / _newest(sweeps)
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and p.name.isdigit())
    uri = re.search(r"logger\.mlflow\.tracking_uri=(\S+)", command)
    uri = os.path.expandvars(uri.group(1).replace("$HOME", str(cwd.parent / "home"))) if uri else None
    client = MlflowClient(uri or f"sqlite:///{cwd / 'outputs' / 'mlflow.db'}")
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()], max_results=1000)
    parents = [r for r in runs if r.data.tags.get("ocrdet.sweep_dir") == str(sweep_dir.resolve())
               and r.data.tags.get("ocrdet.role") == "sweep"]
    assert len(parents) == 1, f"{sweep_dir}: {len(parents)} parent runs"
    parent = parents[0]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.data.tags["ocrdet.run_dir"] for r in children) == sorted(str(j.resolve()) for j in jobs)
    assert all(r.info.status == "FINISHED" for r in children)
    assert "val/hmean" in parent.data.metrics and "ocrdet.best_child.run_id" in parent.data.tags


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=[c.id for c in COMMANDS])
def test_readme_command(command: Command, workdir: Path):
    if command.skip:
        pytest.skip(command.skip)
    text = command.text
    if text.startswith("python -m pytest"):
        pytest.skip("the README's test command: .ci/run runs it, and this test is part of that run")
    if text.startswith(INSTALL_PREFIX):
        text = text[len(INSTALL_PREFIX):]  # .ci/run installed the project exactly so
    text = fill_placeholders(text, workdir)
    full = " ".join([text, *size_overrides(text)])
    out = _run(full, workdir)
    assert out.returncode == 0, f"README line {command.line}: {full}\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}"
    if "--multirun" in text:
        _sweep_children(workdir, text)
