"""The baseline of benchmarks/webhook.py: line-bot-sdk's echo bot, as its Flask example
(examples/flask-echo) writes it — `WebhookHandler` verifies and parses, a
MessageEvent/TextMessageContent handler replies with `MessagingApi.reply_message` inside
the request — served by gunicorn with sync workers:

    LINE_CHANNEL_SECRET=... LINE_API_HOST=http://127.0.0.1:8101 \
      gunicorn -w 2 -k sync -b 127.0.0.1:8100 --chdir benchmarks/baselines echo_bot:app

LINE_API_HOST points the SDK at a loopback fake (fake_line.py) instead of api.line.me.
"""

from __future__ import annotations

import os

from flask import Flask, abort, request
from linebot.v3 import WebhookHandler
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import ApiClient, Configuration, MessagingApi, ReplyMessageRequest, TextMessage
from linebot.v3.webhooks import MessageEvent, TextMessageContent

app = Flask(__name__)

configuration = Configuration(host=os.environ["LINE_API_HOST"],
                              access_token=os.environ.get("LINE_CHANNEL_ACCESS_TOKEN", "bench-token"))
handler = WebhookHandler(os.environ["LINE_CHANNEL_SECRET"])


@app.route("/callback", methods=["POST"])
def callback() -> str:
    signature = request.headers["X-Line-Signature"]
    body = request.get_data(as_text=True)
    try:
        handler.handle(body, signature)
    except InvalidSignatureError:
        abort(400)
    return "OK"


@handler.add(MessageEvent, message=TextMessageContent)
def handle_message(event: MessageEvent) -> None:
    with ApiClient(configuration) as api_client:
        line_bot_api = MessagingApi(api_client)
        line_bot_api.reply_message_with_http_info(
            ReplyMessageRequest(reply_token=event.reply_token, messages=[TextMessage(text=event.message.text)])
        )
