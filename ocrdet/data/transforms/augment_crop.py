"""AugmentCrop: IaaAugment followed by EastRandomCrop in a single resampling of the decoded image."""
from __future__ import annotations

import cv2
import numpy as np

from ocrdet.data.rng import resolve_rng
from ocrdet.data.transforms.iaa_augment import IaaAugment
from ocrdet.data.transforms.random_crop import EastRandomCrop, crop_labels


class AugmentCrop:
    """IaaAugment(flip_prob, rotate, scale), then `crop` (an EastRandomCrop), with the same draws from the rng, the
    same polygons (bit for bit: the same code moves them) and the same crop, but one image resampling instead of
    three. Without `crop` it is IaaAugment.

    The flip, rotation and scale are drawn as IaaAugment draws them; the crop is selected by EastRandomCrop's own
    code on the augmented polygons and the augmented canvas size, without making that canvas. The source-to-output
    pixel map (flip, rotation, resize, crop, resize composed) is then applied by one bilinear cv2.warpAffine from the
    decoded image straight into the pasted region; everything outside it stays exactly 0, as EastRandomCrop pads.

    Deviation from PaddleOCR (and from `fused=False`, which runs the two separate ops as PaddleOCR does): PaddleOCR
    resamples three times (bilinear rotation, bilinear resize by 0.5-3x, bilinear crop resize, none pre-filtered);
    here it is one bilinear resampling at output resolution. Labels, crops and targets are the same (the same code
    moves the polygons); pixels differ by interpolation only: a mean absolute difference of 0.4-2.0 grey levels per
    image on smooth synthetic images (tests/data/test_augment_crop.py), most where the separate ops shrink twice and
    alias. The fused image is a little sharper, and pixels at the crop's edge interpolate with their true neighbours
    instead of a replicated edge (measured on 300 ICDAR2015 draws at crop 320: mean |horizontal grey-level step| 5.91
    fused, 5.44 separate, 5.39 PaddleOCR; scripts/crop_statistics.py). It takes 3.3 ms of CPU per sample at crop 960
    and 1.6 at 320, the separate ops 12.4 (the up-to-3x intermediate canvas is never made). Its effect on training:
    scripts/compare_training.py, README "Behaviours that differ from PaddleOCR".
    """

    def __init__(
        self,
        flip_prob: float = 0.5,
        rotate: tuple = (-10, 10),
        scale: tuple = (0.5, 3.0),
        crop: EastRandomCrop | None = None,
        fused: bool = True,
    ) -> None:
        self.augment = IaaAugment(flip_prob, rotate, scale)
        self.crop = crop
        self.fused = fused

    def __call__(self, data: dict, rng: np.random.Generator | None = None) -> dict:
        rng = resolve_rng(rng)
        if self.crop is None:
            return self.augment(data, rng)
        if self.fused:
            self._augment_crop(data, rng)
        else:
            self.crop(self.augment(data, rng), rng)
        return data

    def _augment_crop(self, data: dict, rng: np.random.Generator) -> None:
        image = data["image"]
        height, width = image.shape[:2]
        augment = self.augment.plan((width, height), rng)
        polys = augment.move_polys(data["polys"])
        crop = self.crop.plan(augment.size[::-1], polys, data["ignore_tags"], rng)
        matrix = (crop.pixel_matrix() @ augment.pixel_matrix())[:2]
        out_w, out_h = self.crop.size
        canvas = np.zeros((out_h, out_w) + image.shape[2:], dtype=image.dtype)
        _warp_into(canvas[: crop.new_h, : crop.new_w], image, matrix)
        data["image"] = canvas
        crop_labels(data, polys, crop)


def _warp_into(region: np.ndarray, image: np.ndarray, matrix: np.ndarray) -> None:
    """Bilinear cv2.warpAffine of `image` by `matrix` (2x3) into `region`; outside the source the constant border
    gives the rotation's 0 fill. OpenCV vectorises the 4-channel case, not the 3-channel one: a 3-channel uint8 image
    is warped with a padding channel (the same values, ~2x faster at 960 even with the two conversions)."""
    height, width = region.shape[:2]
    warp = {"flags": cv2.INTER_LINEAR, "borderMode": cv2.BORDER_CONSTANT, "borderValue": 0}
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        region[...] = cv2.warpAffine(image, matrix, (width, height), **warp).reshape(region.shape)
        return
    warped = cv2.warpAffine(cv2.cvtColor(image, cv2.COLOR_BGR2BGRA), matrix, (width, height), **warp)
    if region.flags.c_contiguous:  # a full-width region: converted straight into the canvas
        cv2.cvtColor(warped, cv2.COLOR_BGRA2BGR, dst=region)
    else:
        region[...] = cv2.cvtColor(warped, cv2.COLOR_BGRA2BGR)
