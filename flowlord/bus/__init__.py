"""The message bus: producers append string messages to topics, consumer groups read them.

The Redis Streams adapter is `flowlord.bus.streams.RedisBus`, imported only when used (it
needs redis-py, and most runs use the file bus)."""

from flowlord.bus.base import (
    BusFolderError,
    BusUnavailable,
    Consumer,
    Message,
    Producer,
    check_topic,
)
from flowlord.bus.file import FileBus
from flowlord.bus.memory import MemoryBus

__all__ = [
    "BusFolderError",
    "BusUnavailable",
    "Consumer",
    "FileBus",
    "MemoryBus",
    "Message",
    "Producer",
    "check_topic",
]
