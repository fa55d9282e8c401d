from __future__ import annotations

import numpy as np
import pytest

from ocrdet.data.labels import pad_points, parse_icdar2015_gt, read_paddleocr_label_file


def write(tmp_path, name: str, text: str, bom: bool = False, newline: str = "\n"):
    path = tmp_path / name
    path.write_bytes(("\ufeff" if bom else "").encode() + text.replace("\n", newline).encode("utf-8"))
    return path


def test_icdar_bom_crlf_comma_in_transcription_and_dont_care(tmp_path):
    gt = write(
        tmp_path,
        "gt_img_1.txt",
        "377,117,463,117,465,130,378,130,Genaxis, The theatre\n374,155,409,155,409,170,374,170,###\n",
        bom=True,
        newline="\r\n",
    )
    annotation = parse_icdar2015_gt(gt)
    assert annotation.texts == ["Genaxis, The theatre", "###"]
    assert annotation.ignore_tags.tolist() == [False, True]
    assert annotation.polys.dtype == np.float32 and annotation.polys.shape == (2, 4, 2)
    np.testing.assert_array_equal(annotation.polys[0], [[377, 117], [463, 117], [465, 130], [378, 130]])


def test_paddleocr_line_star_ignore_padding_and_path_list(tmp_path):
    label = write(
        tmp_path,
        "label.txt",
        'a/img_61.jpg\t[{"transcription": "MASA", "points": [[310,104],[416,141],[418,216],[312,179]]}, '
        '{"transcription": "*", "points": [[0,0],[4,0],[4,4],[2,6],[0,4]]}]\n'
        '["b/x.jpg", "b/y.jpg"]\t[{"transcription": "###", "points": [[1,1],[5,1],[5,5]]}]\n',
    )
    first, second = read_paddleocr_label_file(label)
    assert first.image_paths == ["a/img_61.jpg"]
    assert first.annotation.texts == ["MASA", "*"]
    assert first.annotation.ignore_tags.tolist() == [False, True]
    assert first.annotation.polys.shape == (2, 5, 2)
    np.testing.assert_array_equal(first.annotation.polys[0, 3:], [[312, 179], [312, 179]])  # last point repeated
    assert second.image_paths == ["b/x.jpg", "b/y.jpg"]
    assert second.annotation.ignore_tags.tolist() == [True]


def test_pad_points_repeats_last_point():
    padded = pad_points([np.array([[0, 0], [1, 0], [1, 1]]), np.array([[0, 0], [2, 0], [2, 2], [0, 2], [0, 1]])])
    assert padded.shape == (2, 5, 2) and padded.dtype == np.float32
    np.testing.assert_array_equal(padded[0], [[0, 0], [1, 0], [1, 1], [1, 1], [1, 1]])


GOOD_ICDAR = "1,1,9,1,9,9,1,9,ok\n"
GOOD_PADDLE = 'x.jpg\t[{"transcription": "ok", "points": [[1,1],[9,1],[9,9]]}]\n'


@pytest.mark.parametrize(
    "bad_line",
    ["1,1,9,1,9,x,1,9,word", "1,1,9,1,9,9,1,9"],
    ids=["non-numeric", "too-few-fields"],
)
def test_icdar_bad_input_names_file_and_line(tmp_path, bad_line):
    gt = write(tmp_path, "gt_bad.txt", GOOD_ICDAR + bad_line + "\n")
    with pytest.raises(ValueError, match=rf"gt_bad\.txt:2: "):
        parse_icdar2015_gt(gt)


@pytest.mark.parametrize(
    "bad_line, problem",
    [
        ('x.jpg\t[{"transcription": "a", "points": [[1,1],[9,1],["a",9]]}]', "non-numeric"),
        ('x.jpg\t[{"transcription": "a", "points": [[1,1],[9,1],[9]]}]', "odd coordinate count"),
        ('x.jpg\t[{"transcription": "a", "points": [[1,1],[9,1]]}]', "at least 3 points"),
        ('x.jpg\t[{"transcription": "a", "points": [[1,1],[9,1],[9,9]]}', "unreadable JSON"),
        ('x.jpg [{"transcription": "a", "points": [[1,1],[9,1],[9,9]]}]', "no tab"),
    ],
    ids=["non-numeric", "odd-count", "two-points", "json", "no-tab"],
)
def test_paddleocr_bad_input_names_file_and_line(tmp_path, bad_line, problem):
    label = write(tmp_path, "bad_label.txt", GOOD_PADDLE + bad_line + "\n")
    with pytest.raises(ValueError, match=rf"bad_label\.txt:2: .*{problem}"):
        read_paddleocr_label_file(label)
