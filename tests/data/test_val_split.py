"""data.val_split: a fixed, seeded part of ICDAR2015's train/ held out for validation, disjoint from training."""
from __future__ import annotations

import numpy as np
import pytest

from ocrdet.cli.config import compose_config
from ocrdet.data.datasets import Icdar2015Dataset, held_out_indices
from tests.conftest import shared_path


def test_held_out_indices_are_a_fixed_seeded_draw():
    np.testing.assert_array_equal(held_out_indices(10, 0.3, 0), held_out_indices(10, 3, 0))
    np.testing.assert_array_equal(held_out_indices(10, 3, 0), np.sort(np.random.default_rng(0).permutation(10)[:3]))
    assert held_out_indices(10, 3, 0).tolist() != held_out_indices(10, 3, 1).tolist()
    assert held_out_indices(1000, 0.1, 0).tolist() == held_out_indices(1000, 100, 0).tolist()
    assert held_out_indices(10, 0, 0).tolist() == []
    for bad, message in ((-1, "must be >= 0"), (10, "holds out 10 of 10"), (0.01, "holds out 0 of 10")):
        with pytest.raises(ValueError, match=message):
            held_out_indices(10, bad, 0)


@pytest.fixture()
def icdar_root(tmp_path):
    """An ICDAR2015-shaped folder: train/ with img_1..img_10, test/ with img_1..img_3, one box each (the
    constructor parses labels only; images are read lazily)."""
    for split, count in (("train", 10), ("test", 3)):
        (tmp_path / split / "images").mkdir(parents=True)
        (tmp_path / split / "gts").mkdir()
        for i in range(1, count + 1):
            (tmp_path / split / "images" / f"img_{i}.jpg").write_bytes(b"")
            (tmp_path / split / "gts" / f"gt_img_{i}.txt").write_text("0,0,10,0,10,10,0,10,word\n", encoding="utf-8")
    return tmp_path


def _names(dataset: Icdar2015Dataset) -> list[str]:
    return [r.image_paths[0].name for r in dataset.records]


def test_the_split_is_deterministic_and_disjoint_from_training(icdar_root):
    train = Icdar2015Dataset(str(icdar_root), "train", [], val_split=0.3, val_split_seed=0)
    val = Icdar2015Dataset(str(icdar_root), "val", [], train=False, val_split=3, val_split_seed=0)
    held = held_out_indices(10, 3, 0)
    assert _names(val) == [f"img_{i + 1}.jpg" for i in held]
    assert _names(train) == [f"img_{i}.jpg" for i in range(1, 11) if i - 1 not in held]
    assert not set(_names(train)) & set(_names(val))
    assert sorted(_names(train) + _names(val)) == sorted(f"img_{i}.jpg" for i in range(1, 11))
    # built again (another process, another run): the same images
    assert _names(Icdar2015Dataset(str(icdar_root), "val", [], train=False, val_split=3, val_split_seed=0)) == _names(val)


def test_without_a_split_val_is_test_and_train_is_whole(icdar_root):
    assert _names(Icdar2015Dataset(str(icdar_root), "val", [], train=False)) == ["img_1.jpg", "img_2.jpg", "img_3.jpg"]
    assert len(Icdar2015Dataset(str(icdar_root), "train", [])) == 10
    # test/ is never split
    assert len(Icdar2015Dataset(str(icdar_root), "test", [], train=False, val_split=3)) == 3


def test_icdar2015_recipe_holds_out_100_training_images():
    root = shared_path("data", "icdar2015")
    cfg = compose_config("train", ["experiment=finetune_cpu", f"data.root={root}"])
    assert cfg.data.val_split == 100 and cfg.data.val.split == "val"
    train = Icdar2015Dataset(str(root), "train", [], val_split=cfg.data.val_split)
    val = Icdar2015Dataset(str(root), "val", [], train=False, val_split=cfg.data.val_split)
    assert (len(train), len(val)) == (900, 100)
    assert _names(val)[:5] == ["img_3.jpg", "img_9.jpg", "img_13.jpg", "img_26.jpg", "img_37.jpg"]
    assert not set(_names(train)) & set(_names(val))
