"""kb's record reader against an oracle: PyYAML's own safe loader gives the same data for
every real record (dates aside, which kb keeps as text), and the refusals stay refusals."""

import datetime as dt

import pytest
import yaml

from kb.knowledge import yamlio

from .conftest import ROOT


def _dates_as_text(x):
    if isinstance(x, dict):
        return {k: _dates_as_text(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_dates_as_text(v) for v in x]
    return x.isoformat() if isinstance(x, (dt.date, dt.datetime)) else x


@pytest.mark.parametrize("path", sorted((ROOT / "papers").glob("*.yaml")), ids=lambda p: p.stem)
def test_real_records_read_as_pyyaml_reads_them(path):
    text = path.read_text(encoding="utf-8")
    assert yamlio.load(text) == _dates_as_text(yaml.load(text, Loader=yaml.SafeLoader))


SCALARS = "a: yes\nb: ~\nc: 0x1F\nd: 1_000\ne: .inf\nf: -3.5e2\ng: 2026-11-21\nh: 'on'\ni: no way\nj: Null\nk: 012\nl: +7\nm: '1'\n"


def test_typed_scalars_follow_yaml_1_1_like_pyyaml():
    expected = _dates_as_text(yaml.load(SCALARS, Loader=yaml.SafeLoader))
    assert yamlio.load(SCALARS) == expected
    assert yamlio.load(SCALARS)["g"] == "2026-11-21"


@pytest.mark.parametrize(
    "text, message",
    [
        ("a: &x [1]\nb: *x\n", "aliases and anchors"),
        ("a: &x 1\nb: *x\n", "aliases and anchors"),
        ("a: 1\na: 2\n", "duplicate key 'a'"),
        ("? [1, 2]\n: 3\n", "a key must be a plain value"),
        ("a: !!python/name:os.system x\n", "is not allowed"),
        ("a: !!binary aGk=\n", "is not allowed"),
        ("a: !!set {x}\n", "is not allowed"),
    ],
)
def test_refusals(text, message):
    with pytest.raises(yamlio.YamlProblem, match=message):
        yamlio.load(text)
