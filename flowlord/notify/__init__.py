"""Notifications (DESIGN §5): alert summaries to `alert_webhook` and `[[hooks]]` events, through
a durable delivery queue in the flowlord database. Pure decisions are in `workflow.notify`."""

from flowlord.notify.notifier import Notifier, notifier_for

__all__ = ["Notifier", "notifier_for"]
