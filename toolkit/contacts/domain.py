"""What contacts contribute: contacts and their identities, their API and pages, `toolkit contacts`."""

from toolkit.contacts import cli, models, pages, routes
from toolkit.kit.domains import Domain

DOMAIN = Domain(
    "contacts",
    models=[models],
    api_routers=[routes.router],
    page_routers=[pages.pages],
    cli_groups=[("contacts", cli.app)],
)
