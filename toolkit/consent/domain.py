"""What the consent registry contributes: purposes, consent events and state, suppressions,
its API and pages, `toolkit consent`."""

from toolkit.consent import cli, models, pages, routes
from toolkit.kit.domains import Domain

DOMAIN = Domain(
    "consent",
    models=[models],
    api_routers=[routes.router],
    page_routers=[pages.pages],
    cli_groups=[("consent", cli.app)],
)
