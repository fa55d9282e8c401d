from __future__ import annotations


import cv2
import numpy as np
import pytest
from hydra.utils import instantiate

from ocrdet.data.datasets import PaddleOCRLabelDataset, SyntheticTextDataset
from ocrdet.data.transforms import CopyPaste, DecodeImage
from ocrdet.data.transforms.copy_paste import crop_quad, rotate_patch
from ocrdet.data.transforms.random_crop import is_poly_outside_rect


class ScriptedRng:
    """Stands in for np.random.Generator: `permutation` keeps the order, `integers` returns the scripted values."""

    def __init__(self, values: list[int]) -> None:
        self.values = list(values)

    def permutation(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values)

    def integers(self, low: int, high: int) -> int:
        value = self.values.pop(0)
        assert low <= value < high, (low, value, high)
        return value


def rect(x0: float, y0: float, x1: float, y1: float) -> list:
    return [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]


def textured(shape: tuple, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def sample(image: np.ndarray, polys: list, texts: list[str], extra: dict | None = None) -> dict:
    data = {
        "image": image,
        "polys": np.array(polys, np.float32),
        "texts": list(texts),
        "ignore_tags": np.array([t == "###" for t in texts], bool),
    }
    if extra is not None:
        data["ext_data"] = [extra]
    return data


def grid_of_words(count: int, ignored: int, size: int = 200) -> dict:
    """`count` 6x4 px word boxes on a textured image, the first `ignored` of them `###`."""
    polys = [rect(8 * (i % 20) + 1, 6 * (i // 20) + 1, 8 * (i % 20) + 7, 6 * (i // 20) + 5) for i in range(count)]
    texts = ["###" if i < ignored else f"w{i}" for i in range(count)]
    return sample(textured((size, size, 3), 1), polys, texts)


def test_angle_zero_paste_copies_the_source_patch_exactly():
    extra = sample(textured((60, 80, 3), 1), [rect(10, 5, 40, 17)], ["word"])
    source_image = textured((100, 120, 3), 2)
    data = sample(source_image.copy(), [rect(0, 0, 20, 20)], ["old"], extra)
    # angle 0; first position (5, 5) overlaps the old box and is refused; then (50, 60)
    out = CopyPaste()(data, rng=ScriptedRng([0, 5, 5, 50, 60]))
    expected = source_image.copy()
    expected[60:72, 50:80] = extra["image"][5:17, 10:40]
    np.testing.assert_array_equal(out["image"], expected)
    np.testing.assert_array_equal(out["polys"][1], rect(50, 60, 80, 72))
    assert out["texts"] == ["old", "word"] and out["ignore_tags"].tolist() == [False, False]
    assert "ext_data" not in out


@pytest.mark.parametrize(
    ("count", "ignored", "pasted"),
    [(4, 0, 1), (10, 5, 2), (14, 0, 2), (160, 100, 30)],
    ids=["at-least-one", "n-counts-ignored", "int-truncates", "capped-at-30"],
)
def test_number_of_pasted_objects(count, ignored, pasted):
    # k = max(1, min(int(0.2 n), 30)) with n counting the ignored polygons too; only cared-for ones are pasted.
    data = sample(textured((400, 400, 3), 3), [rect(300, 300, 340, 320)], ["old"], grid_of_words(count, ignored))
    out = CopyPaste()(data, rng=np.random.default_rng(0))
    assert len(out["polys"]) == 1 + pasted and len(out["texts"]) == 1 + pasted
    assert out["ignore_tags"].tolist() == [False] * (1 + pasted)
    assert set(out["texts"][1:]) <= {f"w{i}" for i in range(ignored, count)} and len(set(out["texts"][1:])) == pasted


@pytest.mark.parametrize("seed", range(4))
def test_pasted_boxes_avoid_every_earlier_polygon(seed):
    polys = [rect(20, 20, 60, 40), rect(100, 30, 150, 50), rect(40, 120, 90, 160)]
    data = sample(textured((200, 200, 3), seed), polys, ["a", "b", "###"], grid_of_words(60, 0))
    before = data["image"].copy()
    out = CopyPaste()(data, rng=np.random.default_rng(seed))
    assert len(out["polys"]) == 3 + 12
    for i in range(3, len(out["polys"])):
        (x0, y0), (x1, y1) = out["polys"][i].min(axis=0), out["polys"][i].max(axis=0)
        # Earlier polygons, the pasted ones included, are entirely outside the new box's rectangle.
        assert all(is_poly_outside_rect(p, x0, y0, x1 - x0, y1 - y0) for p in out["polys"][:i])
    # The original polygons' pixels are untouched (a rotated patch may spill a pixel beyond its float box).
    for poly in polys:
        (x0, y0), (x1, y1) = np.array(poly, int).min(axis=0), np.array(poly, int).max(axis=0)
        inner = (slice(y0 + 2, y1 - 1), slice(x0 + 2, x1 - 1))
        np.testing.assert_array_equal(out["image"][inner], before[inner])


def test_polygons_are_clipped_and_padded_to_the_source_point_count():
    extra = sample(textured((60, 80, 3), 1), [rect(10, 5, 40, 17)], ["word"])
    hexagon = [[-5, 10], [20, -4], [50, 10], [50, 30], [20, 44], [-5, 30]]
    data = sample(textured((100, 120, 3), 2), [hexagon], ["old"], extra)
    out = CopyPaste()(data, rng=ScriptedRng([0, 60, 60]))
    assert out["polys"].shape == (2, 6, 2) and out["polys"].dtype == np.float32
    np.testing.assert_array_equal(out["polys"][0], [[0, 10], [20, 0], [50, 10], [50, 30], [20, 44], [0, 30]])
    np.testing.assert_array_equal(out["polys"][1], rect(60, 60, 90, 72) + [[60, 72], [60, 72]])


def test_patch_larger_than_the_image_is_skipped():
    extra = sample(textured((60, 80, 3), 1), [rect(0, 0, 70, 20)], ["wide"])
    data = sample(textured((40, 50, 3), 2), [rect(0, 0, 10, 10)], ["old"], extra)
    out = CopyPaste()(data, rng=np.random.default_rng(0))
    assert len(out["polys"]) == 1
    np.testing.assert_array_equal(out["image"], textured((40, 50, 3), 2))


def test_same_rng_same_result():
    def run() -> dict:
        data = sample(textured((200, 200, 3), 5), [rect(20, 20, 60, 40)], ["a"], grid_of_words(40, 3))
        return CopyPaste()(data, rng=np.random.default_rng(7))

    first, second = run(), run()
    np.testing.assert_array_equal(first["image"], second["image"])
    np.testing.assert_array_equal(first["polys"], second["polys"])


def test_crop_quad_straightens_and_lays_down_vertical_text():
    image = textured((60, 80, 3), 1)
    np.testing.assert_array_equal(crop_quad(image, np.array(rect(10, 5, 40, 17))), image[5:17, 10:40])
    tall = crop_quad(image, np.array(rect(10, 5, 20, 20)))  # 10 wide, 15 tall: h/w = 1.5 -> turned
    np.testing.assert_array_equal(tall, np.rot90(image[5:20, 10:20]))
    assert crop_quad(image, np.array(rect(10, 5, 10.5, 20))) is None  # zero width after truncation


def test_rotate_patch_multiples_of_90_are_exact():
    patch = textured((7, 11, 3), 4)
    for quarter in range(4):
        rotated, mask, box = rotate_patch(patch, 90 * quarter)
        np.testing.assert_array_equal(rotated, np.rot90(patch, quarter))  # counter-clockwise, as PIL
        assert mask.all()
    _, _, box = rotate_patch(patch, 90)
    np.testing.assert_allclose(box, [[0, 11], [0, 0], [7, 0], [7, 11]], atol=1e-5)  # top-left went bottom-left


def test_rotate_patch_expands_and_masks():
    patch = np.full((10, 30, 3), 200, np.uint8)
    rotated, mask, box = rotate_patch(patch, 45)
    side = (10 + 30) / np.sqrt(2)  # the rotated rectangle's bounding square
    assert abs(rotated.shape[0] - side) <= 2 and abs(rotated.shape[1] - side) <= 2
    assert (rotated[mask] == 200).all() and (rotated[~mask] == 0).all()
    assert abs(mask.sum() - 300) <= 40  # the rectangle's area, up to half a pixel along its 80 px perimeter
    np.testing.assert_allclose(box.max(axis=0) - box.min(axis=0), [side, side], atol=1e-4)
    # Every masked pixel centre lies inside the box, up to the offset between the integer canvas and rotate_bbox's
    # float one (under a pixel per axis).
    ys, xs = np.nonzero(mask)
    contour = box.reshape(-1, 1, 2)
    inside = [cv2.pointPolygonTest(contour, (float(x) + 0.5, float(y) + 0.5), True) for x, y in zip(xs, ys)]
    assert min(inside) >= -np.sqrt(2)


def write_label_set(root) -> str:
    """a.png: one 4-point word; b.png: a 5-point one; missing.png is not on disk."""
    cv2.imwrite(str(root / "a.png"), textured((40, 60, 3), 1))
    cv2.imwrite(str(root / "b.png"), textured((40, 60, 3), 2))
    label = root / "label.txt"
    label.write_text(
        'a.png\t[{"transcription": "quad", "points": [[5,5],[40,5],[40,20],[5,20]]}]\n'
        'missing.png\t[{"transcription": "x", "points": [[5,5],[30,5],[30,20],[5,20]]}]\n'
        'b.png\t[{"transcription": "five", "points": [[5,5],[20,2],[40,5],[40,20],[5,20]]}]\n',
        encoding="utf-8",
    )
    return str(label)


def test_extra_samples_come_decoded_from_the_dataset_and_skip_unusable_ones(tmp_path):
    label = write_label_set(tmp_path)
    decode, paste = DecodeImage(), CopyPaste()
    dataset = PaddleOCRLabelDataset(str(tmp_path), [label], [decode, paste], train=True)
    assert dataset.ext_data_num == 1 and dataset.ext_transforms == [decode]
    extras = dataset.extra_samples(6, rng=np.random.default_rng(0))
    # The missing image and the 5-point label are skipped: every draw is a.png, decoded, with its label.
    assert [e["image_path"] for e in extras] == [str(tmp_path / "a.png")] * 6
    assert extras[0]["image"].shape == (40, 60, 3) and extras[0]["texts"] == ["quad"]


def test_dataset_attaches_ext_data_for_copy_paste_only():
    attached = []

    def probe(data: dict) -> dict:
        if "ext_data" in data:
            attached.append(data["ext_data"])
        return data

    plain = SyntheticTextDataset(4, 64, 0, [DecodeImage(), probe])
    np.random.seed(0)
    plain[0]
    assert plain.ext_data_num == 0 and attached == []
    pasting = SyntheticTextDataset(4, 64, 0, [DecodeImage(), probe, CopyPaste()])
    np.random.seed(0)
    out = pasting[0]
    [extras] = attached  # the extras themselves went through decode and probe, without ext_data of their own
    assert len(extras) == 1 and extras[0]["image_path"].startswith("synthetic:0:")
    assert extras[0]["image"].shape == (64, 64, 3) and extras[0]["polys"].shape[1:] == (4, 2)
    assert "ext_data" not in out  # consumed by CopyPaste


def test_dataset_without_usable_extra_samples_fails_clearly(tmp_path):
    cv2.imwrite(str(tmp_path / "b.png"), textured((40, 60, 3), 2))
    label = tmp_path / "label.txt"
    five_points = '[{"transcription": "t", "points": [[5,5],[9,2],[20,5],[20,20],[5,20]]}]'
    label.write_text(f"b.png\t{five_points}\n", encoding="utf-8")
    dataset = PaddleOCRLabelDataset(str(tmp_path), [str(label)], [DecodeImage(), CopyPaste()], train=True)
    with pytest.raises(RuntimeError, match="4-point"):
        dataset[0]


def test_copy_paste_option_fills_the_slot_after_decode():
    from ocrdet.cli.config import compose_config

    cfg = compose_config("train", ["copy_paste=ppocrv3", "data.crop_size=64"])
    ops = instantiate(cfg.data.train_transforms)
    dataset = SyntheticTextDataset(2, 96, 0, ops)
    assert dataset.ext_data_num == 1 and isinstance(dataset.transforms[1], CopyPaste)
    np.random.seed(0)
    assert dataset[0]["image"].shape == (3, 64, 64)
