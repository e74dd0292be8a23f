"""Connected sender inboxes: connect (OAuth grant or the local endpoint), start each inbox's
watcher, and resume the enrollments a disconnection paused once the inbox is back."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from nurture.contracts.inbox import WATCHER_WORKFLOW_NAME, WatchInboxInput, watcher_workflow_id
from nurture.contracts.sequence import INBOX_DISCONNECTED, EnrollmentSignal, SignalName
from nurture.crypto import encrypt
from nurture.errors import NurtureError
from nurture.settings import Settings
from nurture.store import Store
from nurture.store.models import Inbox, User

@dataclass
class Inboxes:
    client: Client
    store: Store
    settings: Settings

    async def connect_local(self, user: str, *, daily_cap: int | None = None, min_spacing: int | None = None) -> Inbox:
        """Dev mode: the user's mailbox on the local Gmail endpoint, no OAuth."""
        u = await asyncio.to_thread(self.store.find_user, user)
        inbox = await asyncio.to_thread(
            self.store.upsert_inbox, u.id, email=u.email, provider="local", daily_cap=daily_cap, min_spacing_seconds=min_spacing,
        )
        return await self._connected(inbox)

    async def connect_grant(
        self, user: str, grant: dict[str, Any], *, daily_cap: int | None = None, min_spacing: int | None = None,
    ) -> Inbox:
        """Store an OAuth grant (encrypted at rest) after checking it works: the refresh token is
        exchanged at the token URI and the Gmail profile must be the user's own address."""
        u = await asyncio.to_thread(self.store.find_user, user)
        profile = await asyncio.to_thread(self._verify_grant, u, grant)
        sealed = encrypt(json.dumps({"refresh_token": grant["refresh_token"], "token": grant.get("token")}), self.settings)
        inbox = await asyncio.to_thread(
            self.store.upsert_inbox, u.id, email=profile["emailAddress"], provider="gmail", credentials_encrypted=sealed,
            daily_cap=daily_cap, min_spacing_seconds=min_spacing,
        )
        return await self._connected(inbox)

    def _verify_grant(self, user: User, grant: dict[str, Any]) -> dict[str, Any]:
        from google.auth.exceptions import RefreshError
        from googleapiclient.errors import HttpError

        from activities.gmail_client import credentials_for, gmail_service

        if not grant.get("refresh_token"):
            raise NurtureError("the grant has no refresh token; run the OAuth flow with offline access")
        probe = Inbox.model_validate({
            "user_id": user.id, "email": user.email, "provider": "gmail", "state": "connected", "daily_cap": 1,
            "min_spacing_seconds": 0, "connected_at": "2000-01-01T00:00:00Z", "updated_at": "2000-01-01T00:00:00Z",
        })
        try:
            service = gmail_service(credentials_for(probe, self.settings, grant), self.settings)
            profile = service.users().getProfile(userId="me").execute(num_retries=0)
        except RefreshError as exc:
            raise NurtureError(f"Google refused the grant for {user.email}: {exc.args[0] if exc.args else exc}") from None
        except HttpError as exc:
            raise NurtureError(f"Gmail refused the grant for {user.email}: {exc.status_code} {exc.reason}") from None
        if profile.get("emailAddress", "").lower() != user.email.lower():
            raise NurtureError(
                f"the grant is for {profile.get('emailAddress')}, not {user.email}; sign in as {user.email}"
            )
        return profile

    async def _connected(self, inbox: Inbox) -> Inbox:
        inbox = await asyncio.to_thread(self.store.set_inbox_state, inbox.user_id, "connected")
        await self.ensure_watcher(inbox.user_id)
        await self.resume_paused(inbox.user_id)
        return inbox

    async def ensure_watcher(self, user_id: str) -> None:
        """Start the inbox's watcher unless it runs (the workflow ID makes it a singleton), and
        wake it so it reads the inbox now."""
        handle = await self.client.start_workflow(
            WATCHER_WORKFLOW_NAME,
            WatchInboxInput(user_id=user_id, poll_seconds=self.settings.inbox_poll_seconds),
            id=watcher_workflow_id(user_id),
            task_queue=self.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            static_summary=f"Inbox watcher for user {user_id}",
        )
        await handle.signal("wake")

    async def resume_paused(self, user_id: str) -> int:
        """Resume the enrollments a disconnection paused; they go on where they stopped."""
        paused = await asyncio.to_thread(self.store.open_enrollments, sender_id=user_id)
        count = 0
        for e in paused:
            if e.status_detail == INBOX_DISCONNECTED:
                await self.client.get_workflow_handle(e.workflow_id).signal(SignalName.RESUME, EnrollmentSignal(enrollment_id=e.id))
                count += 1
        return count

    async def ensure_all_watchers(self) -> int:
        inboxes = await asyncio.to_thread(self.store.list_inboxes)
        for inbox in inboxes:
            if inbox.state == "connected":
                await self.ensure_watcher(inbox.user_id)
        return len(inboxes)
