"""Outputs appear whole or not at all, with the permissions a plain write would give."""

import os
import stat

import pytest

from mmconcepts.atomic import atomic_path, write_json


@pytest.mark.parametrize("is_dir", [False, True])
def test_interrupted_write_leaves_nothing(tmp_path, is_dir):
    target = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt), atomic_path(target, is_dir=is_dir) as tmp:
        (tmp / "part").write_text("half") if is_dir else tmp.write_text("half")
        raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_interrupt_while_committing_several_outputs_leaves_no_temporary(tmp_path, monkeypatch):
    """A SIGTERM can arrive while an ExitStack renames its outputs into place one by one."""
    import contextlib

    real_replace = os.replace

    def interrupted_replace(src, dst):
        if str(dst).endswith("second"):
            raise KeyboardInterrupt("signal 15")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", interrupted_replace)
    with pytest.raises(KeyboardInterrupt), contextlib.ExitStack() as stack:
        for name in ("first", "second"):
            stack.enter_context(atomic_path(tmp_path / name, is_dir=True))
    assert list(tmp_path.iterdir()) == []


def test_finished_write_replaces_the_old_output(tmp_path):
    target = tmp_path / "a.json"
    write_json(target, {"v": 1})
    write_json(target, {"v": 2})
    assert target.read_text().strip().replace(" ", "").replace("\n", "") == '{"v":2}'
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


@pytest.mark.parametrize("is_dir", [False, True])
def test_permissions_follow_the_umask(tmp_path, is_dir):
    old = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "out", is_dir=is_dir) as tmp:
            if not is_dir:
                tmp.write_text("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "out").stat().st_mode)
    assert mode == (0o755 if is_dir else 0o644)


def test_read_json_names_a_missing_or_broken_file(tmp_path):
    from mmconcepts.atomic import read_json
    from mmconcepts.errors import MMConceptsError

    with pytest.raises(MMConceptsError, match=r"nope\.json: file not found"):
        read_json(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(MMConceptsError, match=r"bad\.json: not valid JSON"):
        read_json(tmp_path / "bad.json")
