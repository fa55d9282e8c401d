"""The declaration by which a transform asks its dataset for extra samples (PaddleOCR's `ext_data_num`)."""
from __future__ import annotations


class UsesExtraSamples:
    """Base for ops that need other samples of the same dataset besides the current one (CopyPaste).

    `DetDataset` finds the first op of this type whose `ext_data_num` is positive and, for every sample, attaches
    `data["ext_data"]`: that many samples drawn at random from the dataset, each run through the ops that precede the
    consumer (decoded, labels parsed) and having 4-point polygons.
    """

    ext_data_num: int = 0
