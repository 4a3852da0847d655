"""The one option parser every runnable shares (runnable/_cli.py), and kb's reading of ``--set``
(kb/runnables.py, without torch) held to the same rules."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from dataclasses import dataclass

import pytest

from kb import runnables as kbr
from runnable import _cli
from tests.conftest import ROOT

GATE = ("accuracy", ">=", 0.9)


@dataclass
class Config:
    epochs: int = 3
    lr: float = 0.1
    amp_bf16: bool = False
    sizes: tuple = (8, 16)
    scales: tuple = (0.5, 1.0)
    arch: str = "skip-gram"
    hidden: int | None = None


PRESETS = {"tiny": Config(), "paper": Config(epochs=90, sizes=(64, 128))}
CASES = [  # text, kind, element kind, value
    ("false", "bool", "any", False),
    ("True", "bool", "any", True),
    ("0", "bool", "any", False),
    ("7", "int", "any", 7),
    ("-2", "int", "any", -2),
    ("0.01", "float", "any", 0.01),
    ("3", "float", "any", 3.0),
    ("1e-3", "float", "any", 1e-3),
    ("(1,2)", "tuple", "int", (1, 2)),
    ("1,2", "tuple", "int", (1, 2)),
    ("[3, 4]", "tuple", "int", (3, 4)),
    ("5", "tuple", "int", (5,)),
    ("()", "tuple", "int", ()),
    ("1,2", "tuple", "float", (1.0, 2.0)),
    ("relu,tanh", "tuple", "str", ("relu", "tanh")),
    ("1,2", "list", "int", [1, 2]),
    ("cbow", "str", "any", "cbow"),
    ("3", "str", "any", "3"),
    ("[1, 2]", "any", "any", [1, 2]),
    ("word", "any", "any", "word"),
]
BAD = [
    ("maybe", "bool", "takes true or false, not 'maybe'"),
    ("0.5", "int", "takes an int, not '0.5'"),
    ("fast", "float", "takes a float, not 'fast'"),
    ("1.5,2", "tuple", "takes an int, not '1.5'"),
]


def train(cfg: Config, device: str = "cpu") -> dict:
    """Echoes its config; passes when epochs is odd (so the exit status can be checked)."""
    return {
        "metric": "accuracy",
        "value": 0.95,
        "passed": cfg.epochs % 2 == 1,
        "cfg": vars(cfg),
        "ablation": {"name": "no-idea", "value": 0.5},
        "conditions": {"learns": True},
    }


def main(argv=None) -> int:
    return _cli.run_main(__doc__, PRESETS, train, argv, GATE)


@pytest.mark.parametrize("text, kind, elem, value", CASES)
def test_kb_and_the_runnables_read_a_value_the_same_way(text, kind, elem, value):
    got = _cli.parse_value(text, kind, elem)
    assert got == value and type(got) is type(value)
    by_kb = kbr.parse_value(text, kind, elem)
    assert by_kb == got and type(by_kb) is type(got)


@pytest.mark.parametrize("text, kind, message", BAD)
def test_a_value_of_the_wrong_type_says_what_the_field_takes(text, kind, message):
    for parse in (_cli.parse_value, kbr.parse_value):
        with pytest.raises(ValueError) as e:
            parse(text, kind, "int" if kind == "tuple" else "any")
        assert str(e.value) == message


def test_kb_types_a_field_by_its_ast_default_as_the_runnable_does_by_its_value():
    tree = ast.parse((ROOT / "tests" / "runnable" / "test_cli_parser.py").read_text())
    by_ast = kbr._config_fields(tree)
    for name, (default, ann) in by_ast.items():
        assert kbr.kind_of(default, ann) == _cli.kind_of(getattr(Config(), name), ann), name
    assert kbr.kind_of(..., "int | None") == ("int", "any")  # None default: annotation


def test_fields_are_typed_by_their_default(capsys):
    assert (
        main(
            [
                "--preset",
                "tiny",
                "--json",
                "--epochs=5",
                "--lr=1",
                "--amp_bf16=true",
                "--sizes=4,5",
                "--scales=(1,2)",
                "--arch=cbow",
                "--hidden=7",
            ]
        )
        == 0
    )
    cfg = json.loads(capsys.readouterr().out)["cfg"]
    assert cfg == {
        "epochs": 5,
        "lr": 1.0,
        "amp_bf16": True,
        "sizes": [4, 5],
        "scales": [1.0, 2.0],
        "arch": "cbow",
        "hidden": 7,
    }


def test_overrides_apply_to_the_chosen_preset_and_keep_its_tuples():
    cfg = _cli.override(PRESETS["paper"], ["--lr=0.5", "--amp-bf16=1"])  # - for _ is accepted
    assert (cfg.epochs, cfg.sizes, cfg.lr, cfg.amp_bf16) == (90, (64, 128), 0.5, True)
    assert isinstance(_cli.override(cfg, ["--sizes=1,2"]).sizes, tuple)


def test_exit_status_follows_passed(capsys):
    assert main(["--epochs=4"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "accuracy = 0.9500 vs no-idea = 0.5000 (accuracy >= 0.9): FAILED"


@pytest.mark.parametrize(
    "arg, message",
    [
        ("--epoch=2", "unknown field 'epoch' (did you mean 'epochs'?)"),
        ("--lr=fast", "field 'lr' takes a float, not 'fast'"),
        ("--epochs", "unknown field 'epochs' (write --field=value)"),
    ],
)
def test_a_bad_field_is_an_error_naming_the_file(capsys, arg, message):
    with pytest.raises(SystemExit) as exit_:
        main([arg])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"error: runnable/test_cli_parser.py: {message}")


def test_python_dash_m_runs_a_runnable_through_the_shared_parser():
    cmd = [sys.executable, "-m", "runnable.lenet", "--preset", "tiny", "--epochs=x"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "runnable/lenet.py: field 'epochs' takes an int, not 'x'" in proc.stderr


def test_every_runnable_main_is_the_shared_one():
    for path in sorted((ROOT / "runnable").glob("[a-z]*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        main_ = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main")
        assert "run_main(__doc__, PRESETS, train, argv, GATE)" in ast.unparse(main_), path.name
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
        assert "_parse" not in names, path.name
