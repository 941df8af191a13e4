"""zh-TW and English for what staff see. Keys are short English phrases."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from jinja2 import Environment
from markupsafe import Markup, escape

from toolkit.settings import get_settings
from toolkit.web.i18n_chatbot import MESSAGES as CHATBOT_MESSAGES

LOCALES = ("zh-TW", "en")

MESSAGES: dict[str, dict[str, str]] = {
    "app.name": {"zh-TW": "社群營運工具箱", "en": "Social-ops toolkit"},
    "login.title": {"zh-TW": "登入", "en": "Log in"},
    "login.email": {"zh-TW": "電子郵件", "en": "E-mail"},
    "login.password": {"zh-TW": "密碼", "en": "Password"},
    "login.submit": {"zh-TW": "登入", "en": "Log in"},
    "login.failed": {"zh-TW": "電子郵件或密碼錯誤", "en": "Wrong e-mail or password"},
    "logout": {"zh-TW": "登出", "en": "Log out"},
    "nav.contacts": {"zh-TW": "聯絡人", "en": "Contacts"},
    "nav.users": {"zh-TW": "使用者與角色", "en": "Users and roles"},
    "nav.tokens": {"zh-TW": "API 權杖", "en": "API tokens"},
    "nav.audit": {"zh-TW": "稽核紀錄", "en": "Audit log"},
    "nav.line_events": {"zh-TW": "LINE 事件", "en": "LINE events"},
    "nav.line_quota": {"zh-TW": "訊息額度", "en": "Message quota"},
    "nav.line_simulator": {"zh-TW": "LINE 模擬器", "en": "LINE simulator"},
    "lang.switch": {"zh-TW": "English", "en": "中文"},
    "error.title": {"zh-TW": "發生錯誤", "en": "Something went wrong"},
    "error.back": {"zh-TW": "返回", "en": "Go back"},
    "error.permission_denied": {"zh-TW": "您的角色無權執行此操作", "en": "Your role may not do this"},
    "error.csrf_failed": {"zh-TW": "表單已過期，請重新整理後再試一次", "en": "The form expired; reload the page and try again"},
    "error.404": {"zh-TW": "找不到這個項目", "en": "Not found"},
    "error.409": {"zh-TW": "與現有資料衝突", "en": "This conflicts with what is stored"},
    "error.422": {"zh-TW": "輸入有誤", "en": "Something in the input is wrong"},
    # shared
    "yes": {"zh-TW": "是", "en": "Yes"},
    "no": {"zh-TW": "否", "en": "No"},
    "none": {"zh-TW": "—", "en": "—"},
    "pager.prev": {"zh-TW": "← 上一頁", "en": "← Previous"},
    "pager.next": {"zh-TW": "下一頁 →", "en": "Next →"},
    "pager.range": {"zh-TW": "第 {first}–{last} 筆，共 {total} 筆", "en": "{first}–{last} of {total}"},
    "pager.empty": {"zh-TW": "共 0 筆", "en": "0 of 0"},
    "time.note": {"zh-TW": "時間以 {tz} 顯示", "en": "Times in {tz}"},
    # contacts
    "contacts.title": {"zh-TW": "聯絡人", "en": "Contacts"},
    "contacts.search": {"zh-TW": "搜尋名稱或 LINE ID 開頭", "en": "Search name or LINE ID prefix"},
    "contacts.search.submit": {"zh-TW": "搜尋", "en": "Search"},
    "contacts.search.clear": {"zh-TW": "清除", "en": "Clear"},
    "contacts.none_found": {"zh-TW": "找不到符合的聯絡人", "en": "No matching contacts"},
    "contacts.id": {"zh-TW": "編號", "en": "ID"},
    "contacts.name": {"zh-TW": "顯示名稱", "en": "Display name"},
    "contacts.line_id": {"zh-TW": "LINE ID", "en": "LINE ID"},
    "contacts.locale": {"zh-TW": "語言", "en": "Locale"},
    "contacts.created": {"zh-TW": "建立時間", "en": "Created"},
    "contacts.tier": {"zh-TW": "會員等級", "en": "Tier"},
    "contacts.erased": {"zh-TW": "已刪除個資", "en": "Erased"},
    "contacts.unnamed": {"zh-TW": "（未命名）", "en": "(no name)"},
    "contacts.back": {"zh-TW": "返回聯絡人列表", "en": "Back to contacts"},
    "contacts.identities": {"zh-TW": "通路身分", "en": "Channel identities"},
    "contacts.channel": {"zh-TW": "通路", "en": "Channel"},
    "contacts.external_id": {"zh-TW": "外部 ID", "en": "External ID"},
    "contacts.followed": {"zh-TW": "追蹤中", "en": "Following"},
    "contacts.blocked_at": {"zh-TW": "封鎖時間", "en": "Blocked at"},
    "contacts.blocked": {"zh-TW": "已封鎖", "en": "blocked"},
    "contacts.no_identities": {"zh-TW": "沒有通路身分", "en": "No channel identities"},
    # consent
    "consent.current": {"zh-TW": "目前同意狀態", "en": "Current consent"},
    "consent.history": {"zh-TW": "同意紀錄", "en": "Consent history"},
    "consent.history.more": {"zh-TW": "顯示最新 {shown} 筆，共 {total} 筆", "en": "Newest {shown} of {total} shown"},
    "consent.history.empty": {"zh-TW": "尚無同意紀錄", "en": "No consent events yet"},
    "consent.hidden": {"zh-TW": "您的角色無法檢視同意狀態", "en": "Your role may not view consent"},
    "consent.purpose": {"zh-TW": "目的", "en": "Purpose"},
    "consent.state": {"zh-TW": "狀態", "en": "State"},
    "consent.lawful_basis": {"zh-TW": "法律依據", "en": "Lawful basis"},
    "consent.notice_version": {"zh-TW": "告知版本", "en": "Notice version"},
    "consent.changed": {"zh-TW": "變更時間", "en": "Changed"},
    "consent.change": {"zh-TW": "變更", "en": "Change"},
    "consent.action": {"zh-TW": "動作", "en": "Action"},
    "consent.source": {"zh-TW": "來源", "en": "Source"},
    "consent.evidence": {"zh-TW": "佐證", "en": "Evidence"},
    "consent.actor": {"zh-TW": "操作者", "en": "Actor"},
    "consent.time": {"zh-TW": "時間", "en": "Time"},
    "consent.note": {"zh-TW": "備註（選填）", "en": "Note (optional)"},
    "consent.state.granted": {"zh-TW": "已同意", "en": "Granted"},
    "consent.state.withdrawn": {"zh-TW": "已撤回", "en": "Withdrawn"},
    "consent.state.objected": {"zh-TW": "已拒絕", "en": "Objected"},
    "consent.state.none": {"zh-TW": "未表示", "en": "Not decided"},
    "consent.action.grant": {"zh-TW": "同意", "en": "Grant"},
    "consent.action.withdraw": {"zh-TW": "撤回", "en": "Withdraw"},
    "consent.action.object": {"zh-TW": "拒絕（異議）", "en": "Object"},
    "consent.done.grant": {"zh-TW": "已記錄同意", "en": "Grant recorded"},
    "consent.done.withdraw": {"zh-TW": "已記錄撤回", "en": "Withdrawal recorded"},
    "consent.done.object": {"zh-TW": "已記錄異議", "en": "Objection recorded"},
    "consent.basis.consent": {"zh-TW": "當事人同意", "en": "Consent"},
    "consent.basis.contract": {"zh-TW": "契約履行", "en": "Contract"},
    "consent.basis.legitimate_interest": {"zh-TW": "正當利益", "en": "Legitimate interest"},
    "consent.basis.legal_obligation": {"zh-TW": "法定義務", "en": "Legal obligation"},
    "consent.source.follow": {"zh-TW": "加入好友", "en": "Follow"},
    "consent.source.unfollow": {"zh-TW": "封鎖帳號", "en": "Unfollow"},
    "consent.source.keyword": {"zh-TW": "關鍵字", "en": "Keyword"},
    "consent.source.admin": {"zh-TW": "後台", "en": "Admin"},
    "consent.source.api": {"zh-TW": "API", "en": "API"},
    "consent.source.import": {"zh-TW": "匯入", "en": "Import"},
    "consent.source.form": {"zh-TW": "表單", "en": "Form"},
    "consent.source.cli": {"zh-TW": "命令列", "en": "CLI"},
    "consent.source.system": {"zh-TW": "系統", "en": "System"},
    # users
    "users.title": {"zh-TW": "使用者與角色", "en": "Users and roles"},
    "users.email": {"zh-TW": "電子郵件", "en": "E-mail"},
    "users.display_name": {"zh-TW": "名稱（選填）", "en": "Name (optional)"},
    "users.password": {"zh-TW": "密碼（至少 8 個字元）", "en": "Password (at least 8 characters)"},
    "users.roles": {"zh-TW": "角色", "en": "Roles"},
    "users.active": {"zh-TW": "狀態", "en": "Status"},
    "users.is_active": {"zh-TW": "啟用中", "en": "Active"},
    "users.is_inactive": {"zh-TW": "已停用", "en": "Deactivated"},
    "users.created": {"zh-TW": "建立時間", "en": "Created"},
    "users.last_login": {"zh-TW": "最後登入", "en": "Last login"},
    "users.new": {"zh-TW": "新增使用者", "en": "New user"},
    "users.create": {"zh-TW": "建立", "en": "Create"},
    "users.save_roles": {"zh-TW": "儲存角色", "en": "Save roles"},
    "users.deactivate": {"zh-TW": "停用", "en": "Deactivate"},
    "users.reactivate": {"zh-TW": "重新啟用", "en": "Reactivate"},
    "users.you": {"zh-TW": "（您）", "en": "(you)"},
    "users.done.created": {"zh-TW": "已建立使用者", "en": "User created"},
    "users.done.roles": {"zh-TW": "已更新角色", "en": "Roles updated"},
    "users.done.active": {"zh-TW": "已更新狀態", "en": "Status updated"},
    "users.error.user_exists": {"zh-TW": "已有使用者使用此電子郵件", "en": "A user with this e-mail already exists"},
    "users.error.weak_password": {"zh-TW": "密碼至少需要 8 個字元", "en": "The password needs at least 8 characters"},
    "users.error.unknown_role": {"zh-TW": "請至少選擇一個有效的角色", "en": "Choose at least one valid role"},
    "role.admin": {"zh-TW": "管理員", "en": "Admin"},
    "role.editor": {"zh-TW": "編輯", "en": "Editor"},
    "role.approver": {"zh-TW": "審核者", "en": "Approver"},
    "role.ops": {"zh-TW": "營運", "en": "Ops"},
    "role.agent": {"zh-TW": "客服", "en": "Agent"},
    "role.privacy_officer": {"zh-TW": "個資長", "en": "Privacy officer"},
    # tokens
    "tokens.title": {"zh-TW": "API 權杖", "en": "API tokens"},
    "tokens.mine": {"zh-TW": "我的權杖", "en": "Your tokens"},
    "tokens.all": {"zh-TW": "所有使用者的權杖", "en": "All users' tokens"},
    "tokens.none": {"zh-TW": "尚無權杖", "en": "No tokens yet"},
    "tokens.new": {"zh-TW": "建立權杖", "en": "New token"},
    "tokens.name": {"zh-TW": "名稱", "en": "Name"},
    "tokens.days": {"zh-TW": "有效天數（留空為不過期）", "en": "Valid for days (empty: no expiry)"},
    "tokens.create": {"zh-TW": "建立", "en": "Create"},
    "tokens.owner": {"zh-TW": "擁有者", "en": "Owner"},
    "tokens.prefix": {"zh-TW": "開頭", "en": "Starts with"},
    "tokens.created": {"zh-TW": "建立時間", "en": "Created"},
    "tokens.expires": {"zh-TW": "到期", "en": "Expires"},
    "tokens.last_used": {"zh-TW": "最後使用", "en": "Last used"},
    "tokens.status": {"zh-TW": "狀態", "en": "Status"},
    "tokens.status.active": {"zh-TW": "有效", "en": "Active"},
    "tokens.status.revoked": {"zh-TW": "已撤銷", "en": "Revoked"},
    "tokens.status.expired": {"zh-TW": "已過期", "en": "Expired"},
    "tokens.revoke": {"zh-TW": "撤銷", "en": "Revoke"},
    "tokens.never": {"zh-TW": "不過期", "en": "Never"},
    "tokens.created_once": {
        "zh-TW": "請立即複製此權杖，離開此頁後將無法再次顯示：",
        "en": "Copy this token now; it will not be shown again:",
    },
    "tokens.done.revoked": {"zh-TW": "已撤銷權杖", "en": "Token revoked"},
    "tokens.error.invalid_input": {"zh-TW": "名稱需為 1 至 100 個字元", "en": "The name needs 1 to 100 characters"},
    # audit
    "audit.title": {"zh-TW": "稽核紀錄", "en": "Audit log"},
    "audit.verify": {"zh-TW": "驗證雜湊鏈", "en": "Verify chain"},
    "audit.verify.ok": {"zh-TW": "雜湊鏈完整：已檢查 {rows} 筆", "en": "Chain intact: {rows} rows checked"},
    "audit.verify.bad": {
        "zh-TW": "雜湊鏈遭竄改或缺漏：第 {row} 筆起不符（已檢查 {rows} 筆）",
        "en": "Chain broken at row {row} ({rows} rows checked before it)",
    },
    "audit.back": {"zh-TW": "返回稽核紀錄", "en": "Back to the audit log"},
    "audit.id": {"zh-TW": "序號", "en": "#"},
    "audit.time": {"zh-TW": "時間", "en": "Time"},
    "audit.actor": {"zh-TW": "操作者", "en": "Actor"},
    "audit.action": {"zh-TW": "動作", "en": "Action"},
    "audit.target": {"zh-TW": "對象", "en": "Target"},
    "audit.details": {"zh-TW": "內容", "en": "Details"},
    "audit.hash": {"zh-TW": "雜湊", "en": "Hash"},
    "audit.empty": {"zh-TW": "尚無稽核紀錄", "en": "No audit entries yet"},
    # LINE inbox (webhook events)
    "inbox.title": {"zh-TW": "LINE Webhook 事件", "en": "LINE webhook events"},
    "inbox.all": {"zh-TW": "全部", "en": "All"},
    "inbox.received": {"zh-TW": "收到時間", "en": "Received"},
    "inbox.type": {"zh-TW": "類型", "en": "Type"},
    "inbox.user": {"zh-TW": "LINE 使用者", "en": "LINE user"},
    "inbox.status": {"zh-TW": "狀態", "en": "Status"},
    "inbox.attempts": {"zh-TW": "嘗試次數", "en": "Attempts"},
    "inbox.delivery": {"zh-TW": "回覆", "en": "Reply"},
    "inbox.outcome": {"zh-TW": "處理結果", "en": "Outcome"},
    "inbox.last_error": {"zh-TW": "最後錯誤", "en": "Last error"},
    "inbox.retry": {"zh-TW": "重試", "en": "Retry"},
    "inbox.empty": {"zh-TW": "沒有符合的事件", "en": "No matching events"},
    "inbox.redelivery": {"zh-TW": "重送", "en": "redelivery"},
    "inbox.standby": {"zh-TW": "待機模式", "en": "standby"},
    "inbox.done.retried": {"zh-TW": "已重新排入處理佇列", "en": "Queued for another try"},
    "inbox.dead_hint": {
        "zh-TW": "「無法處理」的事件已用完所有自動重試，修正原因後可按「重試」重新處理。",
        "en": "Dead letters have used up their automatic retries; fix the cause, then press Retry.",
    },
    "inbox.status.pending": {"zh-TW": "待處理", "en": "Pending"},
    "inbox.status.processing": {"zh-TW": "處理中", "en": "Processing"},
    "inbox.status.done": {"zh-TW": "已完成", "en": "Done"},
    "inbox.status.ignored": {"zh-TW": "已略過", "en": "Ignored"},
    "inbox.status.dead": {"zh-TW": "無法處理", "en": "Dead letter"},
    "inbox.status.refused": {"zh-TW": "已拒收", "en": "Refused on arrival"},
    "inbox.delivery.reply_pending": {"zh-TW": "回覆中", "en": "Replying"},
    "inbox.delivery.reply_sent": {"zh-TW": "已回覆", "en": "Replied"},
    "inbox.delivery.push_pending": {"zh-TW": "待推播", "en": "Push pending"},
    "inbox.delivery.push_sent": {"zh-TW": "已推播", "en": "Pushed"},
    "inbox.delivery.unknown": {"zh-TW": "不確定（不重送）", "en": "Unknown (not resent)"},
    "inbox.delivery.failed": {"zh-TW": "失敗", "en": "Failed"},
    "inbox.delivery.suppressed": {"zh-TW": "不回覆", "en": "Not answered"},
    # LINE message quota
    "quota.title": {"zh-TW": "LINE 訊息額度", "en": "LINE message quota"},
    "quota.limit": {"zh-TW": "本月額度", "en": "Monthly quota"},
    "quota.used": {"zh-TW": "本月已用", "en": "Used this month"},
    "quota.remaining": {"zh-TW": "剩餘", "en": "Remaining"},
    "quota.unlimited": {"zh-TW": "無上限", "en": "No limit"},
    "quota.messages": {"zh-TW": "{count} 則", "en": "{count} messages"},
    "quota.percent": {"zh-TW": "已用 {percent}%", "en": "{percent}% used"},
    "quota.warn": {
        "zh-TW": "本月已用掉 {percent}% 的訊息額度（{warn}% 起警示）。額度用完後，LINE 會以 429 拒絕推播與群發。",
        "en": "{percent}% of this month's quota is used (warning from {warn}%). Once it is spent LINE refuses pushes and multicasts with 429.",
    },
    "quota.note": {
        "zh-TW": "以回覆權杖（reply）回覆不計入額度；推播、群發與廣播才計入。",
        "en": "Replies with a reply token are free; pushes, multicasts and broadcasts count.",
    },
    "quota.problem.not_configured": {
        "zh-TW": "尚未設定 LINE channel access token（TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN），無法查詢額度。",
        "en": "No LINE channel access token is configured (TOOLKIT_LINE_CHANNEL_ACCESS_TOKEN), so the quota cannot be read.",
    },
    "quota.problem.unreachable": {
        "zh-TW": "目前無法連線到 LINE，請稍後再試。",
        "en": "LINE cannot be reached right now; try again later.",
    },
    "quota.problem.refused": {
        "zh-TW": "LINE 拒絕了額度查詢，請確認 channel access token 是否有效。",
        "en": "LINE refused the quota request; check that the channel access token is valid.",
    },
    "quota.detail": {"zh-TW": "技術細節", "en": "Technical detail"},
    # LINE chat simulator
    "simulator.title": {"zh-TW": "LINE 聊天模擬器", "en": "LINE chat simulator"},
    "simulator.disabled": {
        "zh-TW": "聊天模擬器只在啟用 LINE 沙盒時可用（TOOLKIT_LINE_SANDBOX=1，例如 toolkit demo）。",
        "en": "The chat simulator works only with the LINE sandbox on (TOOLKIT_LINE_SANDBOX=1, as in toolkit demo).",
    },
    "simulator.explain": {
        "zh-TW": "每個動作都會產生一個以 channel secret 簽章的 LINE webhook 事件，經 HTTP 送到本系統的 /line/webhook；機器人的回覆取自 LINE 沙盒的紀錄。",
        "en": "Each action builds a LINE webhook event signed with the channel secret and POSTs it over HTTP to our /line/webhook; the bot's replies come from the LINE sandbox's record.",
    },
    "simulator.user": {"zh-TW": "模擬的 LINE 使用者", "en": "Simulated LINE user"},
    "simulator.switch": {"zh-TW": "切換", "en": "Switch"},
    "simulator.new_user": {"zh-TW": "產生新使用者", "en": "New user"},
    "simulator.contact": {"zh-TW": "查看聯絡人", "en": "Open contact"},
    "simulator.events": {"zh-TW": "查看事件", "en": "Open events"},
    "simulator.actions": {"zh-TW": "使用者動作", "en": "User actions"},
    "simulator.follow": {"zh-TW": "加入好友", "en": "Follow"},
    "simulator.unfollow": {"zh-TW": "封鎖", "en": "Unfollow"},
    "simulator.placeholder": {"zh-TW": "輸入訊息", "en": "Type a message"},
    "simulator.send": {"zh-TW": "傳送", "en": "Send"},
    "simulator.bot": {"zh-TW": "官方帳號（沙盒）", "en": "Official account (sandbox)"},
    "simulator.followed": {"zh-TW": "你已將此官方帳號加入好友", "en": "You added this account as a friend"},
    "simulator.unfollowed": {"zh-TW": "你已封鎖此官方帳號", "en": "You blocked this account"},
    "simulator.other_event": {"zh-TW": "事件", "en": "Event"},
    "simulator.empty": {"zh-TW": "尚無對話，按「加入好友」開始。", "en": "No conversation yet; press Follow to start."},
    "simulator.failed": {"zh-TW": "傳送失敗", "en": "Sending failed"},
    "simulator.sandbox_error": {"zh-TW": "無法讀取 LINE 沙盒的訊息紀錄", "en": "Could not read the LINE sandbox's record"},
    "simulator.not_delivered": {"zh-TW": "未送達", "en": "Not delivered"},
    "simulator.via.reply": {"zh-TW": "回覆", "en": "reply"},
    "simulator.via.push": {"zh-TW": "推播", "en": "push"},
}

MESSAGES |= CHATBOT_MESSAGES


def negotiate(cookie: str | None, accept_language: str | None, default: str) -> str:
    if cookie in LOCALES:
        return cookie
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh-TW"
        if tag.startswith("en"):
            return "en"
    return default


def has_message(key: str) -> bool:
    return key in MESSAGES


def translator(locale: str) -> Callable[..., str]:
    def t(key: str, **values: object) -> str:
        entry = MESSAGES.get(key)
        text = key if entry is None else entry.get(locale) or entry["en"]
        return text.format(**values) if values else text

    return t


def local_time(value: datetime | None, seconds: bool = False) -> Markup:
    """A stored UTC time as staff read it (settings.timezone), keeping the exact UTC instant
    machine-readable and on hover."""
    if value is None:
        return Markup('<span class="muted">—</span>')
    shown = value.astimezone(ZoneInfo(get_settings().timezone))
    utc = value.isoformat(timespec="seconds")
    text = shown.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    return Markup('<time datetime="{0}" title="{0}">{1}</time>').format(escape(utc), text)


def install_filters(env: Environment) -> None:
    env.filters["local_time"] = local_time
