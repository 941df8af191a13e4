"""What the FAQ chatbot contributes: the FAQ bank and conversations, their API and pages,
the bot as the inbox's text handler, its jobs, the erasure of a person's chats, `toolkit faq`."""

from toolkit.chatbot import agent_replies, bot, cli, conversations, jobs, models, pages, routes
from toolkit.kit.domains import Domain

DOMAIN = Domain(
    "chatbot",
    models=[models],
    api_routers=[routes.faq, routes.chat],
    page_routers=[pages.pages],
    jobs=[jobs.release_idle, jobs.retry_agent_pushes],
    erasure_steps=[conversations.erase_contact],
    event_handlers={"text": bot.handle},
    cli_groups=[("faq", cli.app)],
    delivery_listeners={agent_replies.SOURCE: agent_replies.record_agent_deliveries},
)
