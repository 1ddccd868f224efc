"""The operator's one handle on the registry: resolve, follow aliases, hear webhooks.

    registry = RegistryService(RegistrySettings(), on_changes=enqueue_reconciles)
    registry.start()                       # watch thread, and the webhook receiver if a
                                           # secret is configured
    resolved = registry.resolve("fraud", alias="champion")
    registry.follow(AliasRef("fraud", "champion"), resolved.version)
    ...
    registry.unfollow(AliasRef("fraud", "champion"))   # when no InferenceModel uses it
    registry.stop()

`on_changes` runs on the watch thread with every batch of `AliasChange`s;
an asyncio operator hands them over with `loop.call_soon_threadsafe`. MLflow
must be told where to post (once, by whoever runs MLflow):
`MlflowClient().create_webhook(name="seaway", url=<receiver URL>,
events=["model_version_alias.created", "model_version_alias.deleted"],
secret=<SEAWAY_REGISTRY_WEBHOOK_SECRET>)`.
"""

from __future__ import annotations

from collections.abc import Callable

from seaway.registry.client import MlflowRegistryClient
from seaway.registry.model import ResolvedModel
from seaway.registry.resolve import Resolver
from seaway.registry.settings import RegistrySettings
from seaway.registry.watch import AliasChange, AliasRef, PollReport, RegistryWatcher, WatchLoop
from seaway.registry.webhooks import RegistryEvent, WebhookReceiver


class RegistryService:
    """Resolver, watcher loop and (optional) webhook receiver over one MLflow client."""

    def __init__(
        self,
        settings: RegistrySettings,
        on_changes: Callable[[tuple[AliasChange, ...]], None],
        *,
        on_report: Callable[[PollReport], None] | None = None,
    ) -> None:
        self.settings = settings
        self.client = MlflowRegistryClient.from_settings(settings)
        self.resolver = Resolver.from_settings(settings, self.client)
        self.watcher = RegistryWatcher.from_settings(settings, self.client)
        self.loop = WatchLoop(self.watcher, on_changes, on_report=on_report)
        self.receiver: WebhookReceiver | None = None
        if settings.webhook_secret is not None:
            self.receiver = WebhookReceiver(
                settings.webhook_secret,
                self._on_event,
                host=settings.webhook_host,
                port=settings.webhook_port,
                path=settings.webhook_path,
                tolerance=settings.webhook_tolerance_seconds,
                replay_capacity=settings.webhook_replay_cache_size,
            )

    def start(self) -> None:
        if self.receiver is not None:
            self.receiver.start()
        self.loop.start()

    def stop(self) -> None:
        self.loop.stop()
        if self.receiver is not None:
            self.receiver.stop()

    def resolve(
        self, name: str, *, alias: str | None = None, version: str | None = None
    ) -> ResolvedModel:
        """See `Resolver.resolve`; raises `SeawayRegistryError`s."""
        return self.resolver.resolve(name, alias=alias, version=version)

    def follow(self, ref: AliasRef, known_version: str | None) -> None:
        """Report `ref`'s moves away from `known_version` (what the caller deployed).

        The model is re-read at once, closing the gap between the caller's resolve
        and now; many follows at start-up coalesce into one listing.
        """
        self.watcher.track(ref, known_version)
        self.loop.notify(ref.model)

    def unfollow(self, ref: AliasRef) -> None:
        self.watcher.untrack(ref)

    def _on_event(self, event: RegistryEvent) -> None:
        if event.moves_alias and event.model is not None:
            self.loop.notify(event.model)
