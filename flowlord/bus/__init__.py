"""The message bus: producers append string messages to topics, consumer groups read them."""

from flowlord.bus.base import BusFolderError, Consumer, Message, Producer, check_topic
from flowlord.bus.file import FileBus
from flowlord.bus.memory import MemoryBus

__all__ = [
    "BusFolderError",
    "Consumer",
    "FileBus",
    "MemoryBus",
    "Message",
    "Producer",
    "check_topic",
]
