"""Networks: backbones, necks, heads, the DB detector that wires them, and pretrained-weight loading."""
from ocrdet.models.detector import DBDetector
from ocrdet.models.weights import LoadReport, load_pretrained

__all__ = ["DBDetector", "LoadReport", "load_pretrained"]
