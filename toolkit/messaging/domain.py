"""What messaging contributes: the outbound_message table, the sender loop, letting sends
in flight finish when a worker stops, and the erasure of what was sent to a person."""

from toolkit.kit.domains import Domain
from toolkit.messaging import jobs, models, sender, service

DOMAIN = Domain(
    "messaging",
    models=[models],
    work_loops=[jobs.send_due],
    worker_setup=[sender.finish_sends_when_stopping],
    erasure_steps=[service.erase_contact],
)
