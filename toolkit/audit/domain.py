"""What the audit log contributes: its hash chain, its pages, the nightly check, `toolkit audit`."""

from toolkit.audit import cli, jobs, models, pages
from toolkit.kit.domains import Domain

DOMAIN = Domain(
    "audit",
    models=[models],
    page_routers=[pages.pages],
    jobs=[jobs.verify_chain],
    cli_groups=[("audit", cli.app)],
)
