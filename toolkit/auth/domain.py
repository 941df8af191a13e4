"""What staff accounts contribute: users and API tokens, the login pages, `toolkit users`."""

from toolkit.auth import cli, models, pages, routes
from toolkit.kit.domains import Domain

DOMAIN = Domain(
    "auth",
    models=[models],
    api_routers=[routes.router],
    page_routers=[pages.pages],
    cli_groups=[("users", cli.app)],
)
