"""The LINE sandbox: a local LINE Messaging API that LINE's own SDK works against unchanged.

    app = create_sandbox_app(MemoryStore())             # standalone: `toolkit line sandbox`
    app = create_sandbox_app(DbStore(get_engine()))     # shared by every `toolkit serve`

It imports no toolkit domain; only toolkit.db, toolkit.settings, toolkit.kit and
toolkit.line.limits.
"""

from toolkit.line.sandbox.app import create_sandbox_app
from toolkit.line.sandbox.db_store import DbStore
from toolkit.line.sandbox.models import SANDBOX_TABLES
from toolkit.line.sandbox.service import Sandbox, SandboxConfig, register_reply_token
from toolkit.line.sandbox.store import MemoryStore, SandboxStore

__all__ = [
    "SANDBOX_TABLES",
    "DbStore",
    "MemoryStore",
    "Sandbox",
    "SandboxConfig",
    "SandboxStore",
    "create_sandbox_app",
    "register_reply_token",
]
