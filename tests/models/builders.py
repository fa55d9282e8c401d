"""The two PP-OCRv3 architectures, built the way the configs do (partials for backbone, neck and head)."""
from __future__ import annotations

from functools import partial

from ocrdet.models.backbones.mobilenet_v3 import MobileNetV3
from ocrdet.models.backbones.resnet_vd import ResNetVd
from ocrdet.models.detector import DBDetector
from ocrdet.models.heads.db_head import DBHead
from ocrdet.models.necks.lk_pan import LKPAN
from ocrdet.models.necks.rse_fpn import RSEFPN


def build_student(neck=None) -> DBDetector:
    """MobileNetV3 large x0.5 (no SE) + RSEFPN(96) + DBHead(k=50), as in ch_PP-OCRv3_det_student.yml."""
    return DBDetector(
        partial(MobileNetV3, in_channels=3, model_name="large", scale=0.5, disable_se=True),
        neck or partial(RSEFPN, out_channels=96, shortcut=True),
        partial(DBHead, k=50),
    )


def build_teacher(neck=None, kernel_list=(7, 2, 2)) -> DBDetector:
    """ResNet50_vd + LKPAN(256, large) + DBHead(kernel_list [7,2,2]), the CML teacher."""
    return DBDetector(
        partial(ResNetVd, in_channels=3, layers=50),
        neck or partial(LKPAN, out_channels=256),
        partial(DBHead, k=50, kernel_list=list(kernel_list)),
    )
