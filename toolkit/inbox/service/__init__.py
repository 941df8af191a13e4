"""The webhook inbox: storing events on arrival, claiming and handling them in the worker,
retrying with backoff, dead letters, retention.

    events.py    the inbox's rows: arrival, claiming, how an event ends, reading, retention,
                 erasure
    handling.py  what an event does (through handlers.py), one at a time or a claimed
                 batch in one transaction with a SAVEPOINT per event
"""

from toolkit.inbox.service.events import (
    DEAD, DONE, ERASED, HANDLED_TYPES, IGNORED, LEASE, MAX_ATTEMPTS, PENDING, PROCESSING, STATUSES, ChannelConfigError,
    ClaimedEvent, EventNotDead, EventNotFound, EventPage, backoff, claim, claimed_events, count_by_status, describe,
    erase_contact, event_page, event_rows, events_for_user, fail, finish, get, insert_statement, list_events,
    purge_handled, recent_users, renew, retry_dead, set_delivery, store_events,
)
from toolkit.inbox.service.handling import (
    FINAL_DELIVERY, NO_CHANNEL, REPLY_PENDING, REPLY_SOURCE, SUPPRESSED, handle, handle_batch, load_channel_config,
    record_deliveries,
)

__all__ = [
    "DEAD", "DONE", "ERASED", "FINAL_DELIVERY", "HANDLED_TYPES", "IGNORED", "LEASE", "MAX_ATTEMPTS", "NO_CHANNEL", "PENDING",
    "PROCESSING", "REPLY_PENDING", "REPLY_SOURCE", "STATUSES", "SUPPRESSED", "ChannelConfigError", "ClaimedEvent", "EventNotDead",
    "EventNotFound", "EventPage", "backoff", "claim", "claimed_events", "count_by_status",
    "describe", "erase_contact", "event_page", "event_rows", "events_for_user", "fail", "finish", "get", "handle",
    "handle_batch",
    "insert_statement", "list_events", "load_channel_config", "purge_handled", "recent_users", "record_deliveries",
    "renew", "retry_dead", "set_delivery", "store_events",
]
