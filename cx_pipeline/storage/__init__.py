"""Where data lives: Parquet datasets and the raw archive under one data root."""

from cx_pipeline.storage.parquet_store import ParquetStore, RawArchive, StoreError

__all__ = ["ParquetStore", "RawArchive", "StoreError"]
