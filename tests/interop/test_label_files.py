"""PaddleOCR det label files written by ocrdet.data.labels read back identically with ocrdet.data.labels."""
from __future__ import annotations

import numpy as np
import pytest

from ocrdet.data.labels import make_annotation, read_paddleocr_label_file
from ocrdet.data.labels import format_label_line, icdar2015_to_label_file, write_label_file


def test_a_label_line_has_paddleocr_s_exact_form():
    line = format_label_line("imgs/a.jpg", [np.array([[310, 104], [416, 141], [418, 216], [312, 179]])], ["MASA"])
    assert line == 'imgs/a.jpg\t[{"transcription": "MASA", "points": [[310, 104], [416, 141], [418, 216], [312, 179]]}]'
    assert format_label_line("b.jpg", []) == "b.jpg\t[]"
    assert format_label_line("c.jpg", [[[0.5, 1], [2, 1], [2, 3]]]) == 'c.jpg\t[{"points": [[0.5, 1], [2, 1], [2, 3]]}]'
    with pytest.raises(ValueError, match="2 transcriptions for 1 polygons"):
        format_label_line("d.jpg", [[[0, 0], [1, 0], [1, 1]]], ["a", "b"])


def test_written_label_file_reads_back(tmp_path):
    quad = np.array([[1, 2], [30, 2], [30, 12], [1, 12]], np.float32)
    hexagon = np.array([[0, 0], [10, 0], [15, 5], [10, 10], [0, 10], [-5, 5]], np.float32)
    entries = [
        ("train/a.jpg", make_annotation([quad, hexagon], ["Hello", "###"])),
        ("train/b.jpg", make_annotation([quad + 0.5], ["中文"])),
    ]
    path = write_label_file(tmp_path / "labels" / "train.txt", entries)
    lines = read_paddleocr_label_file(path)
    assert [line.image_paths for line in lines] == [["train/a.jpg"], ["train/b.jpg"]]
    for line, (_, annotation) in zip(lines, entries):
        np.testing.assert_array_equal(line.annotation.polys, annotation.polys)
        assert line.annotation.texts == annotation.texts
        np.testing.assert_array_equal(line.annotation.ignore_tags, annotation.ignore_tags)
    assert "中文" in path.read_text(encoding="utf-8")  # UTF-8, not \u escapes (as PaddleOCR's gen_label writes)


def test_icdar2015_split_converts_to_one_label_file(tmp_path):
    split = tmp_path / "icdar" / "test"
    (split / "images").mkdir(parents=True)
    (split / "gts").mkdir()
    (split / "images" / "img_1.jpg").write_bytes(b"")
    (split / "gts" / "gt_img_1.txt").write_text("\ufeff1,2,30,2,30,12,1,12,Hi,there\n5,5,9,5,9,9,5,9,###\n", "utf-8")
    path = icdar2015_to_label_file(tmp_path / "icdar", "test", tmp_path / "test_label.txt", prefix="ch4/")
    assert path.read_text(encoding="utf-8") == (
        'ch4/test/images/img_1.jpg\t[{"transcription": "Hi,there", "points": [[1, 2], [30, 2], [30, 12], [1, 12]]}, '
        '{"transcription": "###", "points": [[5, 5], [9, 5], [9, 9], [5, 9]]}]\n'
    )
