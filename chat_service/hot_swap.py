"""Publishing adapters into a running engine with no downtime, and rolling them back.

The protocol, the same for every engine:
1. every published version has a name never used before (vLLM caches prefixes by name, so new
   weights under an old name could serve stale results);
2. check the files: the expensive checks (safetensors headers, rank, every shape against the
   base model) once, when the version is registered; at each activation only that the files
   still match the sha256 recorded then (so they are the files that were checked);
3. load under the new name next to what is serving;
4. smoke test: a fixed prompt must produce a non-empty reply from the new adapter (two tokens:
   it proves the adapter loads and decodes, and costs one step more than a reply's first token);
5. switch the tenant's active pointer in one database transaction (replies that already
   started keep streaming on the adapter they began with: the responder holds a lease);
6. the previous version stays loaded for instant rollback; older ones are unloaded by
   ``sync`` once no reply uses them.
Any failure before step 5 leaves the pointer where it was and marks the candidate rejected
with the reason. ``sync`` also runs periodically, so an engine that restarts gets its active
adapters back by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from chat_service.adapter_leases import AdapterLeases
from chat_service.leadership import Leadership, SoleWorker
from core.chat_format import Turn
from core.crud.adapters import (
    approved_waiting,
    get_adapter,
    mark_rejected,
    register_adapter,
    serving_set,
    switch_active,
    unloadable_names,
)
from core.crud.tenants import get_tenant_by_slug
from core.db import read_scope, session_scope
from core.errors import ConflictError, NotFoundError
from core.models import AdapterStatus, AdapterVersion, Tenant
from core.settings import Settings
from engines import (
    Engine,
    EngineError,
    EngineUnavailableError,
    SamplingParams,
)
from engines.adapter_files import (
    AdapterFileError,
    adapter_digest,
    inspect_adapter,
    verify_digest,
)
from engines.base_model import read_manifest

log = logging.getLogger(__name__)

SMOKE_PROMPT = [Turn("user", "Hello! Can you help me with my order?")]
SMOKE_PARAMS = SamplingParams(max_tokens=2, temperature=0.0)
PUBLISHER = "adapter-publisher"
# A candidate younger than this may be half-way through another worker's activation.
ACTIVATION_GRACE = timedelta(minutes=10)


class HotSwapError(Exception):
    """Root of publishing errors; the message is safe to show an operator. Raised as itself
    when the engine cannot take a version right now (try again later)."""


class UnknownTenantOrAdapterError(HotSwapError, NotFoundError):
    pass


class AdapterRejectedError(HotSwapError, ConflictError):
    pass


class NothingToRollBackError(HotSwapError, ConflictError):
    pass


class AdapterManager:
    def __init__(
        self,
        *,
        db: DbEngine,
        engine: Engine,
        leases: AdapterLeases,
        settings: Settings,
        leadership: Leadership | None = None,
    ) -> None:
        self._db = db
        self._leadership = leadership or SoleWorker()
        self._engine = engine
        self._leases = leases
        self._settings = settings
        self._tenant_locks: defaultdict[int, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._sync_lock = asyncio.Lock()
        self.loaded: set[str] = set()  # what the engine holds, as of the last load/unload/sync
        self._activating: set[str] = set()  # loaded, not yet switched to: sync leaves them be

    # -- publish, activate, rollback --------------------------------------------------------------

    async def publish(self, *, tenant_slug: str, name: str, path: Path) -> AdapterVersion:
        """Register ``path`` as a new version, check its files once, and activate it."""
        tenant = await run_in_threadpool(self._tenant, tenant_slug)

        def register() -> AdapterVersion:
            digest = adapter_digest(path)
            base = read_manifest(self._settings.resolved_model_dir).get("base_model", "")
            with session_scope(self._db) as session:
                assert tenant.id is not None
                version = register_adapter(
                    session=session,
                    tenant_id=tenant.id,
                    name=name,
                    path=str(path.resolve()),
                    base_model=str(base),
                    sha256=digest,
                )
            try:
                self._inspect(path)
            except AdapterFileError as exc:  # recorded, so the listing says why
                self._reject(version, f"{type(exc).__name__}: {exc}")
                raise
            return version

        try:
            await run_in_threadpool(register)
        except (AdapterFileError, ValueError) as exc:
            raise AdapterRejectedError(f"{name} rejected: {exc}") from exc
        # Hashed and inspected a moment ago, in this call: the activation need not hash again.
        return await self.activate(tenant_slug=tenant_slug, name=name, files_checked=True)

    async def activate(
        self, *, tenant_slug: str, name: str, files_checked: bool = False
    ) -> AdapterVersion:
        tenant = await run_in_threadpool(self._tenant, tenant_slug)
        assert tenant.id is not None
        async with self._tenant_locks[tenant.id]:
            version = await run_in_threadpool(self._version, tenant.id, name)
            if version.status == AdapterStatus.REJECTED:
                raise AdapterRejectedError(f"{name} was rejected: {version.status_reason}")
            if tenant.active_adapter_id == version.id:
                return version
            context = f"tenant={tenant.slug} adapter={name}"
            self._activating.add(name)
            try:
                await self._activate(tenant.id, version, context, files_checked)
            finally:
                self._activating.discard(name)
            log.info("activated (%s)", context)
        asyncio.get_running_loop().create_task(self.try_sync())
        return await run_in_threadpool(self._version, tenant.id, name)

    async def _activate(
        self, tenant_id: int, version: AdapterVersion, context: str, files_checked: bool
    ) -> None:
        name = version.name
        try:
            await self._prepare(version, files_checked)
        except (AdapterFileError, EngineError, HotSwapError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if name in self.loaded:  # only what we loaded ourselves
                await self._unload_quietly(name)
            if version.status == AdapterStatus.RETIRED and isinstance(exc, EngineUnavailableError):
                # A good version the engine cannot take right now: not its fault.
                raise HotSwapError(f"engine unavailable, {name} not activated: {exc}") from exc
            log.warning("rejected (%s): %s", context, reason)
            await run_in_threadpool(self._reject, version, reason)
            raise AdapterRejectedError(f"{name} rejected: {reason}") from exc
        # Under the sync lock: a sync that read the registry before this switch would otherwise
        # see the new version as neither wanted nor activating, and unload it.
        async with self._sync_lock:
            await run_in_threadpool(self._switch, tenant_id, version)

    async def rollback(self, *, tenant_slug: str) -> AdapterVersion:
        """Back to the version active before the current one (still loaded: instant)."""

        def previous_name() -> str:
            with session_scope(self._db) as session:
                tenant = get_tenant_by_slug(session=session, slug=tenant_slug)
                if tenant is None:
                    raise UnknownTenantOrAdapterError(f"tenant {tenant_slug!r} not found")
                if tenant.previous_adapter_id is None:
                    raise NothingToRollBackError(f"tenant {tenant_slug!r} has no previous version")
                previous = session.get(AdapterVersion, tenant.previous_adapter_id)
                assert previous is not None
                return previous.name

        name = await run_in_threadpool(previous_name)
        return await self.activate(tenant_slug=tenant_slug, name=name)

    async def _prepare(self, version: AdapterVersion, files_checked: bool) -> None:
        """Steps 2-4: the files are the ones checked at registration, load (under its own
        name), smoke test."""
        path = Path(version.path)
        started = time.perf_counter()
        if not files_checked:
            await run_in_threadpool(verify_digest, path, version.sha256)
        checked = time.perf_counter()
        # Under the sync lock: a sync that listed the engine just before this load would
        # otherwise overwrite `loaded` with a list that lacks the new version.
        async with self._sync_lock:
            if version.status in (AdapterStatus.CANDIDATE, AdapterStatus.APPROVED):
                await self._engine.load_adapter(version.name, path)  # refuses a name in use
            else:
                await self._engine.ensure_adapter(version.name, path)  # a retired one returning
            self.loaded.add(version.name)
        loaded = time.perf_counter()
        reply = ""
        with self._leases.hold(version.name):
            async for piece in self._engine.stream_chat(
                SMOKE_PROMPT, adapter=version.name, params=SMOKE_PARAMS
            ):
                reply += piece
        if not reply.strip():
            raise HotSwapError("smoke test: the adapter produced an empty reply")
        log.info(
            "%s ready in %.2f s (digest %.2f s, load %.2f s, smoke test %.2f s)",
            version.name,
            time.perf_counter() - started,
            checked - started,
            loaded - checked,
            time.perf_counter() - loaded,
        )

    # -- keeping the engine in line with the registry ---------------------------------------------

    async def sync(self) -> None:
        """Publish what the nightly loop approved; load every tenant's active and previous
        versions wherever missing (an engine that restarted comes back by itself); unload
        versions nobody needs, once idle.

        With several workers every one loads what is wanted (idempotent), but only the leader
        publishes approved versions, and on an engine the workers share only the leader
        unloads: a worker whose registry read is a moment old would otherwise unload what
        another has just activated."""
        leader = await self._leadership.leads(PUBLISHER)
        for tenant_slug, name in await run_in_threadpool(self._approved) if leader else []:
            try:
                await self.activate(tenant_slug=tenant_slug, name=name)
            except HotSwapError as exc:
                log.warning("approved adapter not published (tenant=%s): %s", tenant_slug, exc)
        async with self._sync_lock:
            wanted, unneeded = await run_in_threadpool(self._serving_state)
            for name, path in wanted.items():
                try:
                    await self._engine.ensure_adapter(name, Path(path))
                except EngineError as exc:
                    log.warning("could not load %s: %s", name, exc)
            loaded = set(await self._engine.list_adapters())
            if leader or not self._engine.shared:
                for name in (loaded & unneeded) - set(wanted):
                    if self._leases.in_use(name) or name in self._activating:
                        continue  # still streaming, or about to serve; a later sync decides
                    await self._unload_quietly(name)
                    loaded.discard(name)
            self.loaded = loaded

    async def run_sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self._settings.adapter_sync_interval_s)
            await self.try_sync()

    async def try_sync(self) -> None:
        try:
            await self.sync()
        except EngineError as exc:
            log.warning("adapter sync skipped: %s", exc)

    async def _unload_quietly(self, name: str) -> None:
        """Best effort: a version that cannot be unloaded now is retried by the next sync."""
        try:
            await self._engine.unload_adapter(name)
        except EngineError as exc:
            log.warning("could not unload %s (the next sync retries): %s", name, exc)
        self.loaded.discard(name)

    # -- database steps (run in the thread pool) --------------------------------------------------

    def _tenant(self, slug: str) -> Tenant:
        with read_scope(self._db) as session:
            tenant = get_tenant_by_slug(session=session, slug=slug)
            if tenant is None:
                raise UnknownTenantOrAdapterError(f"tenant {slug!r} not found")
            return tenant

    def _version(self, tenant_id: int, name: str) -> AdapterVersion:
        with read_scope(self._db) as session:
            version = get_adapter(session=session, tenant_id=tenant_id, name=name)
            if version is None:
                raise UnknownTenantOrAdapterError(f"adapter {name!r} not found for this tenant")
            return version

    def _inspect(self, path: Path) -> None:
        inspect_adapter(
            path,
            base_model_dir=self._settings.resolved_model_dir,
            max_rank=self._settings.max_lora_rank,
        )

    def _reject(self, version: AdapterVersion, reason: str) -> None:
        assert version.id is not None
        with session_scope(self._db) as session:
            mark_rejected(session=session, adapter_id=version.id, reason=reason)

    def _switch(self, tenant_id: int, version: AdapterVersion) -> None:
        assert version.id is not None
        with session_scope(self._db) as session:
            switch_active(session=session, tenant_id=tenant_id, adapter_id=version.id)

    def _approved(self) -> list[tuple[str, str]]:
        with read_scope(self._db) as session:
            waiting = approved_waiting(session=session)
            slugs = {t.id: t.slug for t in session.exec(select(Tenant)).all()}
            return [(slugs[v.tenant_id], v.name) for v in waiting]

    def _serving_state(self) -> tuple[dict[str, str], set[str]]:
        with read_scope(self._db) as session:
            return serving_set(session=session), unloadable_names(
                session=session, grace=ACTIVATION_GRACE
            )
