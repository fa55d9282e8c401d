"""Detection heads."""
from ocrdet.models.heads.db_head import DBHead

__all__ = ["DBHead"]
