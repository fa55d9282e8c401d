"""One test per bad-input kind (issue 5 item 3): the message names the file (and line), nothing else is lost.

Tiny PNGs and a decode-only pipeline keep these fast; target generation is exercised where the kind reaches it.
"""
from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from ocrdet.data.datamodule import collate_train
from ocrdet.data.datasets import BadSampleError, Icdar2015Dataset, PaddleOCRLabelDataset
from ocrdet.data.datamodule import WorkerSeeder, build_dataloader
from ocrdet.data.transforms import DecodeImage, KeepKeys, MakeBorderMap, MakeShrinkMap

BOX = [[4, 4], [28, 4], [28, 20], [4, 20]]
SIZE = 32  # images are SIZE x SIZE


def region(points: list, text: str = "word") -> dict:
    return {"transcription": text, "points": points}


def line(image: str, *regions: dict) -> str:
    return f"{image}\t{json.dumps(list(regions))}"


def write_png(path: Path) -> None:
    cv2.imwrite(str(path), np.full((SIZE, SIZE, 3), 128, np.uint8))


def label_dataset(tmp_path: Path, lines: list[str], train: bool, transforms: list | None = None):
    """Good images a.png, b.png, c.png exist; the label file holds `lines` (1-based line i = lines[i-1])."""
    for name in ("a.png", "b.png", "c.png"):
        write_png(tmp_path / name)
    label = tmp_path / "label.txt"
    label.write_text("".join(f"{text}\n" for text in lines), encoding="utf-8")
    return PaddleOCRLabelDataset(str(tmp_path), [str(label)], transforms or [DecodeImage()], train=train), label


GOOD = [line("a.png", region(BOX)), line("c.png", region(BOX))]


def exact(message: str) -> str:
    """A pytest.raises pattern matching exactly `message`."""
    return f"^{re.escape(message)}$"


def assert_others_load(dataset, names: dict[int, str]) -> None:
    """Nothing else is lost: every good index loads its own image, with nothing skipped."""
    for index, name in names.items():
        sample = dataset[index]
        assert Path(sample["image_path"]).name == name
        assert sample.get("skipped", 0) == 0


# --- image files: training skips (counted, logged), evaluation stops with the same message ------------------------


UNDECODABLE = "undecodable image (not an image, or truncated)"


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda path: None, "cannot read image: No such file or directory"),
        (lambda path: path.write_bytes(b"not an image"), UNDECODABLE),
        (lambda path: path.write_bytes(b""), UNDECODABLE),
    ],
    ids=["missing", "undecodable", "empty-file"],
)
def test_bad_image_skipped_in_training_and_an_error_in_eval(tmp_path, caplog, make, problem):
    make(tmp_path / "bad.png")
    lines = [GOOD[0], line("bad.png", region(BOX)), GOOD[1]]
    expected = f"{tmp_path / 'bad.png'} ({tmp_path / 'label.txt'}:2): {problem}"
    caplog.set_level(logging.WARNING, logger="ocrdet.data.datasets")
    train, _ = label_dataset(tmp_path, lines, train=True)
    np.random.seed(0)
    sample = train[1]
    assert Path(sample["image_path"]).name in ("a.png", "c.png")
    # A redraw may hit the bad image again: every draw is counted, and each carries the same reason.
    assert sample["skipped"] == len(sample["skip_reasons"]) >= 1
    assert set(sample["skip_reasons"]) == {expected}
    assert caplog.text.count(expected) == sample["skipped"] == train.skipped
    assert_others_load(train, {0: "a.png", 2: "c.png"})

    evaluation, _ = label_dataset(tmp_path, lines, train=False)
    with pytest.raises(BadSampleError) as raised:
        evaluation[1]
    assert str(raised.value).startswith(expected + ";")
    assert_others_load(evaluation, {0: "a.png", 2: "c.png"})


def test_icdar_missing_image_in_eval_names_image_and_gt_file(tmp_path):
    (tmp_path / "test" / "images").mkdir(parents=True)
    (tmp_path / "test" / "gts").mkdir()
    for stem in ("img_1", "img_2"):
        (tmp_path / "test" / "gts" / f"gt_{stem}.txt").write_text("4,4,28,4,28,20,4,20,word\n")
    write_png(tmp_path / "test" / "images" / "img_1.png")
    (tmp_path / "test" / "images" / "img_2.png").write_bytes(b"\x89PNG truncated")
    dataset = Icdar2015Dataset(str(tmp_path), "test", [DecodeImage()], train=False)
    image, gt = tmp_path / "test" / "images" / "img_2.png", tmp_path / "test" / "gts" / "gt_img_2.txt"
    with pytest.raises(BadSampleError, match="^" + re.escape(f"{image} ({gt}): {UNDECODABLE};")):
        dataset[1]
    assert dataset[0]["image"].shape == (SIZE, SIZE, 3)


def icdar_split(tmp_path: Path, split: str, gts: list[str], images: list[str]) -> Path:
    (tmp_path / split / "images").mkdir(parents=True)
    (tmp_path / split / "gts").mkdir()
    for stem in gts:
        (tmp_path / split / "gts" / f"gt_{stem}.txt").write_text("4,4,28,4,28,20,4,20,word\n")
    for name in images:
        write_png(tmp_path / split / "images" / name)
    return tmp_path / split


def test_icdar_gt_files_without_an_image_are_all_listed_in_evaluation(tmp_path):
    split = icdar_split(tmp_path, "test", ["img_1", "img_2", "img_3", "img_4"], ["img_1.jpg", "img_3.gif"])
    with pytest.raises(FileNotFoundError) as raised:
        Icdar2015Dataset(str(tmp_path), "test", [DecodeImage()], train=False)
    suffixes = "{.jpg,.jpeg,.png,.bmp,.webp,.tif,.tiff}"
    assert str(raised.value) == (
        "3 ground-truth file(s) without an image; evaluation would leave their boxes out of recall:\n"
        f"  {split}/gts/gt_img_2.txt: no image img_2{suffixes} in {split}/images\n"
        f"  {split}/gts/gt_img_3.txt: no image img_3{suffixes} in {split}/images (found img_3.gif: not a readable "
        "image type)\n"
        f"  {split}/gts/gt_img_4.txt: no image img_4{suffixes} in {split}/images"
    )


def test_icdar_bmp_and_webp_images_are_read(tmp_path):
    icdar_split(tmp_path, "test", ["img_1", "img_2"], ["img_1.bmp", "img_2.jpg"])
    cv2.imwrite(str(tmp_path / "test" / "images" / "img_2.webp"), np.zeros((SIZE, SIZE, 3), np.uint8))
    (tmp_path / "test" / "images" / "img_2.jpg").unlink()
    dataset = Icdar2015Dataset(str(tmp_path), "test", [DecodeImage()], train=False)
    assert len(dataset) == 2 and dataset[1]["image"].shape == (SIZE, SIZE, 3)


def test_icdar_gt_without_an_image_in_training_is_a_logged_loss(tmp_path, caplog):
    icdar_split(tmp_path, "train", ["img_1", "img_2"], ["img_1.png"])
    dataset = Icdar2015Dataset(str(tmp_path), "train", [DecodeImage()])
    assert len(dataset) == 1
    assert "1 ground-truth file(s) without an image, not trained on: " in caplog.text and "gt_img_2.txt" in caplog.text


def test_only_bad_images_stop_training_naming_the_last_reason(tmp_path):
    train, _ = label_dataset(tmp_path, [line("gone.png", region(BOX))], train=True)
    with pytest.raises(RuntimeError, match=r"100 samples in a row were unusable, the last: .*gone\.png .*label\.txt:1"):
        train[0]


def test_skip_count_survives_loader_workers(tmp_path):
    """`skipped` is counted in the worker process and reaches the main process through the batch."""
    lines = [GOOD[0], line("gone.png", region(BOX)), GOOD[1], line("b.png", region(BOX))]
    transforms = [DecodeImage(), MakeBorderMap(), MakeShrinkMap(), _ToTrainKeys()]
    train, _ = label_dataset(tmp_path, lines, train=True, transforms=transforms)
    loader = build_dataloader(train, 2, collate_train, shuffle=False, num_workers=1, seed=5)  # shared memory too
    batches = list(loader)
    skipped = [int(np.asarray(batch["skipped"])) for batch in batches]
    # A 0-D int64 tensor per batch, as the Trainer sums it.
    assert all(list(batch["skipped"].shape) == [] and "int64" in str(batch["skipped"].dtype) for batch in batches)
    # Replay in this process: the worker seeds NumPy from (seed, epoch, rank, worker id) and loads in batch order.
    WorkerSeeder(5)(0)
    expected = [int(collate_train([train[i], train[i + 1]])["skipped"]) for i in (0, 2)]
    assert skipped == expected and sum(skipped) >= 1


class _ToTrainKeys:
    """Image to CHW float and the four targets: what collate_train stacks."""

    def __call__(self, data: dict) -> dict:
        data["image"] = data["image"].transpose(2, 0, 1).astype(np.float32)
        return KeepKeys(["image", "threshold_map", "threshold_mask", "shrink_map", "shrink_mask"])(data)


# --- label files: parsed at construction, so a broken one fails before training ------------------------------------


@pytest.mark.parametrize(
    "bad, problem",
    [
        ('bad.png\t[{"transcription": "a", "points": [[1,1],[9,1],[9,9]]}', "unreadable JSON"),
        ('bad.png [{"transcription": "a", "points": [[1,1],[9,1],[9,9]]}]', "found no tab"),
        (line("bad.png", region([[1, 1], [9, "x"], [9, 9]])), "non-numeric coordinate"),
        ('bad.png\t[{"transcription": "a", "points": [[1,1],[9,NaN],[9,9]]}]', "non-numeric coordinate"),
        (line("bad.png", region([[1, 1], [9, 1], [9]])), "odd coordinate count (5 values)"),
        (line("bad.png", region([[1, 1], [9, 1]])), "a polygon needs at least 3 points, got 2"),
    ],
    ids=["json", "no-tab", "non-numeric", "nan", "odd-count", "two-points"],
)
def test_unreadable_label_line_fails_at_construction_naming_file_and_line(tmp_path, bad, problem):
    with pytest.raises(ValueError) as raised:
        label_dataset(tmp_path, [GOOD[0], bad, GOOD[1]], train=True)
    assert str(raised.value).startswith(f"{tmp_path / 'label.txt'}:2: ")
    assert problem in str(raised.value)


def test_non_utf8_label_line_names_its_line(tmp_path):
    label = tmp_path / "label.txt"
    label.write_bytes((GOOD[0] + "\n").encode() + b"a.png\t[{\"transcription\": \"\xff\", \"points\": []}]\n")
    write_png(tmp_path / "a.png")
    with pytest.raises(ValueError, match="^" + re.escape(f"{label}:2: not UTF-8")):
        PaddleOCRLabelDataset(str(tmp_path), [str(label)], [DecodeImage()])


@pytest.mark.parametrize("bad", ["4,4,28,4,28,x,4,20,word", "4,4,28,4,28,20,4,20", "4,4,28,4,28,inf,4,20,w"])
def test_icdar_bad_gt_line_fails_at_construction(tmp_path, bad):
    (tmp_path / "train" / "images").mkdir(parents=True)
    (tmp_path / "train" / "gts").mkdir()
    write_png(tmp_path / "train" / "images" / "img_1.png")
    gt = tmp_path / "train" / "gts" / "gt_img_1.txt"
    gt.write_text(f"4,4,28,4,28,20,4,20,ok\n{bad}\n")
    with pytest.raises(ValueError, match="^" + re.escape(f"{gt}:2: ")):
        Icdar2015Dataset(str(tmp_path), "train", [DecodeImage()])


# --- degenerate polygons: kept as ignored (masked), the image and its other boxes are kept --------------------------


@pytest.mark.parametrize(
    "points, reason",
    [
        ([[4, 4], [28, 4], [28, 4]], "fewer than 3 distinct points"),
        ([[4, 4], [16, 10], [28, 16], [16, 10]], "zero area"),
        ([[4, 4], [28, 28], [28, 4], [4, 28]], "self-intersecting"),
    ],
    ids=["duplicates", "zero-area", "self-intersecting"],
)
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_degenerate_polygon_is_ignored_with_a_reason(tmp_path, caplog, points, reason, train):
    caplog.set_level(logging.WARNING, logger="ocrdet.data.labels")
    lines = [GOOD[0], line("b.png", region(BOX, "keep"), region(points, "bad")), GOOD[1]]
    transforms = [DecodeImage(), MakeBorderMap(), MakeShrinkMap()] if train else [DecodeImage()]
    dataset, label = label_dataset(tmp_path, lines, train=train, transforms=transforms)
    expected = f"{label}:2 region 1: degenerate polygon ({reason}): marked ignore, as '###'"
    assert [r.getMessage() for r in caplog.records] == [expected]
    sample = dataset[1]
    assert sample["texts"] == ["keep", "bad"] and sample["ignore_tags"].tolist() == [False, True]
    if train:  # target generation copes: the good box is text, the degenerate one adds no text pixel
        assert sample["skipped"] == 0
        shrink = sample["shrink_map"]
        assert shrink[8:16, 8:24].all() and shrink.sum() == shrink[4:21, 4:29].sum()
        assert 0.3 - 1e-6 <= sample["threshold_map"].min() and sample["threshold_map"].max() <= 0.7 + 1e-6
    assert_others_load(dataset, {0: "a.png", 2: "c.png"})


def test_self_intersecting_region_is_masked_in_training(tmp_path):
    bowtie = [[4, 4], [28, 28], [28, 4], [4, 28]]
    dataset, _ = label_dataset(tmp_path, [line("a.png", region(bowtie))], True, [DecodeImage(), MakeShrinkMap()])
    sample = dataset[0]
    assert sample["shrink_map"].sum() == 0
    assert sample["shrink_mask"][14:18, 6:10].max() == 0 and sample["shrink_mask"][14:18, 22:26].max() == 0  # lobes


# --- points outside the image --------------------------------------------------------------------------------------


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_points_outside_the_image_are_named(tmp_path, caplog, train):
    partly = [[20, 4], [40, 4], [40, 20], [20, 20]]
    wholly = [[50, 50], [60, 50], [60, 60], [50, 60]]
    lines = [GOOD[0], line("b.png", region(BOX), region(partly), region(wholly)), GOOD[1]]
    dataset, label = label_dataset(tmp_path, lines, train=train)
    caplog.set_level(logging.WARNING, logger="ocrdet.data.datasets")
    sample = dataset[1]
    image = tmp_path / "b.png"
    outcome = "marked ignore" if train else "kept as ground truth"
    assert [r.getMessage() for r in caplog.records] == [
        f"{image} ({label}:2 region 1): polygon extends outside the image: kept, target generation clips it (32x32)",
        f"{image} ({label}:2 region 2): polygon lies entirely outside the image: {outcome} (32x32)",
    ]
    assert sample["ignore_tags"].tolist() == [False, False, train]
    np.testing.assert_array_equal(sample["polys"][2], wholly)  # coordinates untouched: eval scores the GT as given
    dataset[1]
    assert len(caplog.records) == 2  # once per region and process, not every epoch of every draw
    assert_others_load(dataset, {0: "a.png", 2: "c.png"})


# --- whole-image and whole-dataset kinds ---------------------------------------------------------------------------


def test_image_whose_boxes_are_all_ignored_is_kept_and_named(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="ocrdet.data.datasets")
    lines = [GOOD[0], line("b.png", region(BOX, "###"), region([[1, 1], [3, 1], [3, 3]], "*")), GOOD[1]]
    dataset, label = label_dataset(tmp_path, lines, True, [DecodeImage(), MakeBorderMap(), MakeShrinkMap()])
    assert [r.getMessage() for r in caplog.records] == [
        f"1 images have only ignored ('###' or degenerate) boxes; kept as background-only samples: "
        f"{tmp_path / 'b.png'} ({label}:2)"
    ]
    sample = dataset[1]
    assert sample["skipped"] == 0 and sample["shrink_map"].sum() == 0 and sample["shrink_mask"][8:16, 8:24].max() == 0
    assert_others_load(dataset, {0: "a.png", 2: "c.png"})


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_image_without_boxes_is_left_out_and_named(tmp_path, caplog, train):
    caplog.set_level(logging.WARNING, logger="ocrdet.data.datasets")
    dataset, label = label_dataset(tmp_path, [GOOD[0], "b.png\t[]", GOOD[1]], train=train)
    assert [r.getMessage() for r in caplog.records] == [
        f"1 of 3 images have no boxes in their labels and are left out: {tmp_path / 'b.png'} ({label}:2)"
    ]
    assert_others_load(dataset, {0: "a.png", 1: "c.png"})


def test_empty_dataset_is_an_error_naming_the_source(tmp_path):
    with pytest.raises(ValueError, match=exact(f"PaddleOCRLabelDataset: no samples in {tmp_path / 'label.txt'}")):
        label_dataset(tmp_path, [], train=True)
    with pytest.raises(ValueError, match=r"no samples in .*label\.txt"):  # only box-less images: nothing left
        label_dataset(tmp_path, ["a.png\t[]"], train=True)
    (tmp_path / "icdar" / "train" / "images").mkdir(parents=True)
    with pytest.raises(ValueError, match=exact(f"Icdar2015Dataset: no samples in {tmp_path / 'icdar' / 'train'}")):
        Icdar2015Dataset(str(tmp_path / "icdar"), "train", [])


def test_missing_dataset_root_is_an_error_naming_the_path(tmp_path):
    nowhere, no_file = tmp_path / "nowhere", tmp_path / "no.txt"
    with pytest.raises(FileNotFoundError, match=exact(f"ICDAR2015 root not found: {nowhere}")):
        Icdar2015Dataset(str(nowhere), "train", [])
    with pytest.raises(FileNotFoundError, match=exact(f"data_dir not found: {nowhere}")):
        PaddleOCRLabelDataset(str(nowhere), [], [])
    with pytest.raises(FileNotFoundError, match=exact(f"label file not found: {no_file}")):
        PaddleOCRLabelDataset(str(tmp_path), [str(no_file)], [])


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small JPEG whose frame header claims width x height (a decoder would allocate for that)."""
    ok, encoded = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(encoded.tobytes())
    sof = data.index(b"\xff\xc0")  # baseline frame header: length(2) precision(1) height(2) width(2)
    data[sof + 5 : sof + 9] = height.to_bytes(2, "big") + width.to_bytes(2, "big")
    return bytes(data)


def test_a_huge_test_image_is_refused_by_its_header_before_decoding(tmp_path):
    split = icdar_split(tmp_path, "test", ["img_1"], [])
    (split / "images" / "img_1.jpg").write_bytes(jpeg_claiming(20000, 20000))
    dataset = Icdar2015Dataset(str(tmp_path), "test", [DecodeImage()], train=False)
    with pytest.raises(BadSampleError, match=re.escape(
        f"{split / 'images' / 'img_1.jpg'} ({split / 'gts' / 'gt_img_1.txt'}): image of more than 178956970 pixels "
        "exceeds max_pixels=134217728: decoding it could exhaust memory"
    )):
        dataset[0]
    (split / "images" / "img_1.jpg").write_bytes(jpeg_claiming(12000, 12000))  # under Pillow's limit: its size
    with pytest.raises(BadSampleError, match="image of 12000x12000 pixels exceeds max_pixels=134217728"):
        dataset[0]


def test_a_huge_network_input_is_capped_with_a_warning(caplog):
    from ocrdet.data.transforms import DetResizeForTest

    out = DetResizeForTest()({"image": np.zeros((100, 6000, 3), np.uint8), "image_path": "wide.jpg"})
    assert out["image"].shape == (64, 4000, 3)  # 'min' to 736 would make it 736 x 44160
    np.testing.assert_allclose(out["shape"], [100, 6000, 0.64, 4000 / 6000], rtol=1e-6)
    assert "wide.jpg: 44160x736 input capped to 4000x64 (max_side_len=4000)" in caplog.text


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "sub/../../outside.png"])
def test_a_label_path_leading_outside_data_dir_is_refused_naming_its_line(tmp_path, name):
    with pytest.raises(ValueError) as raised:
        label_dataset(tmp_path, [GOOD[0], line(name, region([[1, 1], [9, 1], [9, 9]]))], train=True)
    assert str(raised.value).startswith(f"{tmp_path / 'label.txt'}:2: image path {name!r} leads outside data_dir")
