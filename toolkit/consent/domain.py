"""What the consent registry contributes: purposes, consent events and state, suppressions,
its API and pages, the erasure of what consent evidence says about a person, `toolkit consent`."""

from toolkit.consent import cli, models, pages, routes, service
from toolkit.kit.domains import Domain

DOMAIN = Domain(
    "consent",
    models=[models],
    api_routers=[routes.router],
    page_routers=[pages.pages],
    erasure_steps=[service.erase_contact],
    cli_groups=[("consent", cli.app)],
)
