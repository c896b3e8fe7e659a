"""The workflow cache: TOML workflow files loaded into SQLite behind the `Cache` interface."""

from cache.errors import RefreshError
from cache.memory import MemoryCache
from cache.protocol import Cache
from cache.schema import SchemaError
from cache.sqlite import SQLiteCache, WorkflowFile

__all__ = ["Cache", "MemoryCache", "RefreshError", "SQLiteCache", "SchemaError", "WorkflowFile"]
