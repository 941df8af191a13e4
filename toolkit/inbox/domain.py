"""What the inbox contributes: stored webhook events, the LINE webhook (a fast path past the
router), its pages, the loop that handles events (their replies go out through messaging,
whose outcomes it listens to), the purge of old ones and the erasure of a person's."""

from toolkit.inbox import jobs, models, pages, routes, service
from toolkit.kit.domains import Domain

DOMAIN = Domain(
    "inbox",
    models=[models],
    api_routers=[routes.router],
    page_routers=[pages.pages],
    fast_paths={("POST", routes.PATH): routes.webhook_asgi},
    jobs=[jobs.purge_handled],
    work_loops=[jobs.process_events],
    worker_setup=[jobs.handle_events_with],
    erasure_steps=[service.erase_contact],
    delivery_listeners={service.REPLY_SOURCE: service.record_deliveries},
)
