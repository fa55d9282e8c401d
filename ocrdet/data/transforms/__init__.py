"""Sample transforms: callables `(dict) -> dict | None` (None drops the sample). The random ones also take an optional
`rng` (see `ocrdet.data.rng`)."""
from ocrdet.data.transforms.augment_crop import AugmentCrop
from ocrdet.data.transforms.copy_paste import CopyPaste
from ocrdet.data.transforms.decode import DecodeImage
from ocrdet.data.transforms.iaa_augment import IaaAugment
from ocrdet.data.transforms.keep_keys import KeepKeys
from ocrdet.data.transforms.make_border_map import MakeBorderMap
from ocrdet.data.transforms.make_shrink_map import MakeShrinkMap
from ocrdet.data.transforms.normalize import NormalizeImage
from ocrdet.data.transforms.random_crop import EastRandomCrop
from ocrdet.data.transforms.resize_for_test import DetResizeForTest
from ocrdet.data.transforms.to_chw import ToCHW

__all__ = [
    "AugmentCrop",
    "CopyPaste",
    "DecodeImage",
    "DetResizeForTest",
    "EastRandomCrop",
    "IaaAugment",
    "KeepKeys",
    "MakeBorderMap",
    "MakeShrinkMap",
    "NormalizeImage",
    "ToCHW",
]
