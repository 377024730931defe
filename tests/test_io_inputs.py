"""Expanding files, folders, globs and .txt lists into images with distinct output keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from depthany.io.inputs import expand_inputs


def touch(root: Path, *names: str) -> None:
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x")


def keys(result) -> dict[str, str]:
    return {str(it.key): it.path.name for it in result.items}


@pytest.fixture
def tree(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)
    touch(tmp_path, "photos/a/x.jpg", "photos/b/x.jpg", "photos/c.png", "photos/UP.JPG", "photos/.hidden/y.jpg",
          "photos/.dot.jpg", "photos/notes.txt", "photos/deep/er/z.webp", "other/x.jpg", "other/x.png")
    return tmp_path


def test_folder_is_recursive_and_mirrors_subfolders(tree: Path) -> None:
    got = expand_inputs(["photos"])
    assert not got.problems
    assert [str(i.key) for i in got.items] == ["UP", "c", "a/x", "b/x", "deep/er/z"]
    assert all(i.origin == "photos" for i in got.items)


def test_same_stem_different_suffix_keeps_suffix(tree: Path) -> None:
    assert keys(expand_inputs(["other"])) == {"x.jpg": "x.jpg", "x.png": "x.png"}


def test_equal_names_from_different_arguments(tree: Path) -> None:
    got = expand_inputs(["photos/a/x.jpg", "photos/b/x.jpg"])
    assert [str(i.key) for i in got.items] == ["a/x", "b/x"]
    got = expand_inputs(["photos", "other/x.jpg"])  # 'other/x' does not clash with 'a/x' or 'b/x'
    assert "x" in keys(got) and keys(got)["x"] == "x.jpg"
    assert len({str(i.key).casefold() for i in got.items}) == len(got.items)


def test_single_file_and_duplicates(tree: Path) -> None:
    got = expand_inputs(["photos/c.png", "photos", "./photos/c.png"])
    assert [str(i.key) for i in got.items].count("c") == 1
    assert got.items[0].origin == "photos/c.png" and len(got.items) == 5


def test_glob_keeps_folders_below_its_prefix(tree: Path) -> None:
    got = expand_inputs(["photos/**/*.jpg"])
    assert sorted(str(i.key) for i in got.items) == ["a/x", "b/x"]  # hidden folder not matched by **
    got = expand_inputs([str(tree / "photos" / "*")])  # absolute pattern; matched folders are searched
    assert sorted(str(i.key) for i in got.items) == ["UP", "a/x", "b/x", "c", "deep/er/z"]


def test_txt_list(tree: Path) -> None:
    lst = tree / "lists" / "todo.txt"
    lst.parent.mkdir()
    lst.write_text("# my images\n\n../photos/c.png\n  ../photos/a/x.jpg  \nmissing.jpg\n"
                   f"{tree / 'other' / 'x.png'}\n../photos/deep\nnested.txt\n")
    (lst.parent / "nested.txt").write_text("../photos/c.png\n")
    got = expand_inputs([str(lst)])
    assert [i.path.name for i in got.items] == ["c.png", "x.jpg", "x.png", "z.webp"]
    assert got.items[0].origin == f"{lst}:3"
    reasons = {p.target: p.reason for p in got.problems}
    assert "missing.jpg: no such file" in reasons[f"{lst}:5"]
    assert "lists inside lists" in reasons[f"{lst}:8"]
    assert len({str(i.key) for i in got.items}) == 4


def test_problems_are_reported_not_raised(tree: Path) -> None:
    (tree / "empty").mkdir()
    got = expand_inputs(["nope.jpg", "empty", "photos/*.bmp", "photos/c.png"])
    assert [i.path.name for i in got.items] == ["c.png"]
    reasons = {p.target: p.reason for p in got.problems}
    assert reasons["nope.jpg"] == "no such file or folder"
    assert reasons["empty"].startswith("no image files")
    assert reasons["photos/*.bmp"] == "no image files match this pattern"


def test_output_folder_inside_input_is_excluded(tree: Path) -> None:
    touch(tree, "photos/depth/c_color.png")
    assert "depth/c_color" in keys(expand_inputs(["photos"]))
    assert "depth/c_color" not in keys(expand_inputs(["photos"], exclude=["photos/depth"]))


def test_case_insensitive_clash(tmp_path: Path) -> None:
    touch(tmp_path, "A.jpg", "a.png")
    got = expand_inputs([str(tmp_path)])
    assert sorted(str(i.key) for i in got.items) == ["A.jpg", "a.png"]


def test_explicit_file_with_odd_suffix_is_taken(tree: Path) -> None:
    touch(tree, "img.data")
    got = expand_inputs(["img.data"])
    assert [str(i.key) for i in got.items] == ["img"]
