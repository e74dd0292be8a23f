"""Messages of the inbox watcher: one long-running workflow per connected inbox that follows its
Gmail history and tells enrollments about replies and bounces."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

WATCHER_WORKFLOW_NAME = "InboxWatcher"


def watcher_workflow_id(user_id: str) -> str:
    """One watcher per inbox: the workflow ID makes it a singleton across workers."""
    return f"inbox-watch-{user_id}"


class WatchInboxInput(BaseModel):
    user_id: str
    poll_seconds: float = 30.0
    polls_before_continue_as_new: int = 200


class PollInboxInput(BaseModel):
    user_id: str


class PollResult(BaseModel):
    state: str  # polled | resynced | initialized | disconnected | no_inbox
    messages_seen: int = 0
    replies: int = 0
    bounces: int = 0
    auto_replies: int = 0
    history_id: str | None = None


class InboxActivityName(StrEnum):
    POLL = "inbox.poll_history"
