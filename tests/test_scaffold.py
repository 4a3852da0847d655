"""kb new writes a record that validates, and never overwrites."""

import shutil

import kb
from kb.cli import main

from .conftest import DATA


def fill(path, **fields) -> None:
    """Write what kb new leaves to the author: each ``old=new`` replaces one placeholder line."""
    text = path.read_text(encoding="utf-8")
    for old, new in fields.values():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text, encoding="utf-8")


FILLED = {
    "title": ('title: "TODO title"', 'title: "Gradient-Based Learning"'),
    "authors": ("authors: [TODO Author]", "authors: [Yann LeCun]"),
    "year": ("year: 2000                  # TODO: the year the paper appeared", "year: 1998"),
    "venue": ('venue: "TODO"', 'venue: "Proceedings of the IEEE"'),
    "en": (
        "en: TODO — three to six sentences, in our own words.",
        "en: A convolutional network reads digits.",
    ),
    "zh": ("zh-Hant: TODO — 三到六句，用我們自己的話。", "zh-Hant: 卷積網路辨識手寫數字。"),
}


def test_new_record_validates_and_is_not_overwritten(tmp_path, capsys):
    shutil.copytree(DATA / "mini", tmp_path / "p")
    root = str(tmp_path / "p")
    assert (
        main(
            ["--root", root, "new", "lenet", "--title", "Gradient-Based Learning", "--year", "1998"]
        )
        == 0
    )
    assert kb.load(root).paper("lenet").year == 1998
    assert main(["--root", root, "new", "lenet"]) == 1
    assert "papers/lenet.yaml exists; kb new never overwrites" in capsys.readouterr().err


def test_fresh_record_fails_strict_and_passes_once_filled(tmp_path, capsys):
    """Strict means publishable: kb new's placeholders are warnings, and errors under --strict."""
    shutil.copytree(DATA / "mini", tmp_path / "p")
    root = str(tmp_path / "p")
    assert main(["--root", root, "new", "lenet", "--runnable"]) == 0
    capsys.readouterr()
    assert main(["--root", root, "validate"]) == 0
    out, err = capsys.readouterr()
    assert out == "OK: 6 records, 10 nodes, 10 edges, 6 warnings\n"
    assert (
        "papers/lenet.yaml:3:1: warning: Paper(id='lenet') › title: 'TODO title' is a placeholder"
        in err
    )
    assert main(["--root", root, "validate", "--strict"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert [line.split(": ")[0] for line in err[:-1]] == [
        "papers/lenet.yaml:3:1",
        "papers/lenet.yaml:4:11",
        "papers/lenet.yaml:6:1",
        "papers/lenet.yaml:7:1",
        "papers/lenet.yaml:22:5",
        "papers/lenet.yaml:23:5",
    ]
    assert err[2] == (
        "papers/lenet.yaml:6:1: Paper(id='lenet') › year: 2000 is kb new's placeholder year "
        "(the line says TODO): write the year the paper appeared and delete the comment"
    )
    assert err[-1] == "Aborted: 6 errors in 1 record."
    record = tmp_path / "p" / "papers" / "lenet.yaml"
    for left in FILLED:  # every placeholder counts: filling all but one still fails
        fill(record, **{k: v for k, v in FILLED.items() if k != left})
        assert main(["--root", root, "validate", "--strict"]) == 1, left
        assert capsys.readouterr().err.endswith("Aborted: 1 error in 1 record.\n"), left
        fill(record, **{k: (new, old) for k, (old, new) in FILLED.items() if k != left})
    fill(record, **FILLED)
    assert main(["--root", root, "validate", "--strict"]) == 0
    assert capsys.readouterr().out == "OK: 6 records, 10 nodes, 10 edges\n"


def test_a_real_year_2000_is_not_a_placeholder(tmp_path, capsys):
    shutil.copytree(DATA / "mini", tmp_path / "p")
    root = str(tmp_path / "p")
    assert (
        main(["--root", root, "new", "gers", "--title", "Learning to Forget", "--year", "2000"])
        == 0
    )
    capsys.readouterr()
    assert main(["--root", root, "validate"]) == 0
    assert "› year:" not in capsys.readouterr().err


def test_new_with_runnable_writes_both(tmp_path):
    shutil.copytree(DATA / "mini", tmp_path / "p")
    assert main(["--root", str(tmp_path / "p"), "new", "toy", "--runnable"]) == 0
    base = kb.load(tmp_path / "p")
    assert (
        base.paper("toy").runnable.id == "toy"
        and (tmp_path / "p" / "runnable" / "toy.py").is_file()
    )


def test_new_refuses_a_bad_id(tmp_path, capsys):
    assert main(["--root", str(DATA / "mini"), "new", "../evil"]) == 1
    assert "id '../evil' must match" in capsys.readouterr().err
