"""Detection necks: 4 backbone maps -> one `out_channels` map at stride 4."""
from ocrdet.models.necks.db_fpn import DBFPN
from ocrdet.models.necks.lk_pan import LKPAN
from ocrdet.models.necks.rse_fpn import RSEFPN

__all__ = ["DBFPN", "LKPAN", "RSEFPN"]
