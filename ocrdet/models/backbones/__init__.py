"""Detection backbones: each returns 4 feature maps (strides 4..32) and exposes `out_channels`."""
from ocrdet.models.backbones.mobilenet_v3 import MobileNetV3, SEModule
from ocrdet.models.backbones.resnet_vd import ResNetVd

__all__ = ["MobileNetV3", "ResNetVd", "SEModule"]
