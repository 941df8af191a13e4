"""zh-TW and English for what staff see. Keys are short English phrases."""

from __future__ import annotations

from collections.abc import Callable

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
    "lang.switch": {"zh-TW": "English", "en": "中文"},
    "error.title": {"zh-TW": "發生錯誤", "en": "Something went wrong"},
    "error.back": {"zh-TW": "返回", "en": "Go back"},
    "error.forbidden": {"zh-TW": "您的角色無權執行此操作", "en": "Your role may not do this"},
    "error.csrf": {"zh-TW": "表單已過期，請重新整理後再試一次", "en": "The form expired; reload the page and try again"},
}


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


def translator(locale: str) -> Callable[..., str]:
    def t(key: str, **values: object) -> str:
        entry = MESSAGES.get(key)
        text = key if entry is None else entry.get(locale) or entry["en"]
        return text.format(**values) if values else text

    return t
