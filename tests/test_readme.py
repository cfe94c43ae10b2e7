"""The README's snippets run as written from a fresh clone (issue 22: its Python example
analysed a "group.jpg" nobody had and ended in a traceback). Python blocks that need no
dataset, and the `ekspresi predict` lines on the shipped examples, are run here with the
bundled model, in a scratch folder (the CLI lines through ``ekspresi.cli.main``)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from ekspresi import examples

ROOT = Path(__file__).resolve().parents[1]


def _blocks(doc: Path, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", doc.read_text(), flags=re.S)


def _runnable_python() -> list[tuple[str, str]]:
    out = []
    for doc in (ROOT / "README.md", ROOT / "docs" / "inference.md"):
        for i, code in enumerate(_blocks(doc, "python")):
            if "data/" not in code:      # dataset snippets need the user's own data
                out.append((f"{doc.name}#{i}", code))
    return out


def test_examples_are_shipped_small_and_have_their_sources():
    files = [examples.path(n) for n in examples.names()]
    assert all(f.is_file() for f in files)
    assert sum(f.stat().st_size for f in files) < 1.5e6
    sources = (examples.FOLDER / "SOURCES.md").read_text()
    for f in files:
        assert f"`{f.name}`" in sources
    assert "public domain" in sources
    with pytest.raises(Exception, match="no example named"):
        examples.path("lena")


@pytest.mark.parametrize("name,code", _runnable_python(), ids=[n for n, _ in
                                                              _runnable_python()])
def test_python_snippets_run_as_written(name, code, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, name, "exec"), {"__name__": "__readme__"})
    if name == "README.md#0":
        out = capsys.readouterr().out
        assert "happy" in out and "neutral" in out            # the group's three faces
        assert (tmp_path / "group.annotated.png").is_file()


def test_cli_snippets_on_the_shipped_examples_run_as_written(tmp_path, monkeypatch, capsys):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Recognise"):readme.index("## The bundled")]
    lines = [line.split("#")[0].strip() for code in re.findall(r"```bash\n(.*?)```",
                                                                section, flags=re.S)
             for line in code.splitlines()]
    lines = [x for x in lines if x.startswith("ekspresi predict src/ekspresi/assets/examples")]
    assert len(lines) >= 3
    from ekspresi.cli import main

    monkeypatch.chdir(tmp_path)
    for line in lines:
        argv, _, redirect = line.partition(">")
        args = [a.replace("src/ekspresi/", str(ROOT / "src" / "ekspresi") + "/")
                for a in shlex.split(argv)[1:]]
        capsys.readouterr()
        assert main(args) == 0, (line, capsys.readouterr().err[-2000:])
        if redirect:
            (tmp_path / redirect.strip()).write_text(capsys.readouterr().out)
    assert (tmp_path / "group.annotated.png").is_file()
    assert "happy" in (tmp_path / "results.json").read_text()
    assert (tmp_path / "timeline.csv").read_text().count("\n") > 5
