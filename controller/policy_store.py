"""The node's store of the last good policy: verified, persisted atomically, applied, and
re-loaded at start-up.

The node follows its own slice on ``secroom/v1/{site}/{node}/policy``. Its *floor*, the highest
version it ever applied (``<store>.floor``, kept beside the policy), survives restarts
and a stored file put back from an older copy: nothing below it is applied again. A policy past
its ``expires_at`` is refused; the one in force going past it makes the node *stale*: it emits
``node.policy_stale`` once per version, says so in its state message, and ``current`` is None
when ``stale_mode`` is "closed" (the default: doors deny, reason ``policy_stale``).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controller.envelope import format_ts, now_utc
from controller.events import Emit, NodePolicyStale, PolicyApplied, PolicyRejected
from controller.policy import (
    MAX_POLICY_BYTES,
    Policy,
    PolicyError,
    VerifiedPolicy,
    open_policy,
)

if TYPE_CHECKING:
    from controller.config import GatewayConfig
    from controller.policy_slice import NodeScope


class PolicyStore:
    """The last good policy: verified, written atomically to ``path``, applied, survives restart.

    ``emit`` gets policy.applied / policy.rejected / node.policy_stale; ``on_change`` (optional)
    is called with each newly applied policy, so that doors can follow lockdown. ``node`` is the
    node's name (a slice for another node is refused), ``card_key`` its card key (a slice with
    hashed cards is refused without one). ``scope`` is what the node declares it decides on
    (controller.policy_slice.NodeScope.as_dict), reported in ``status``. Thread-safe.
    """

    def __init__(
        self,
        path: Path,
        trusted: Sequence[Ed25519PublicKey],
        *,
        site: str,
        emit: Emit,
        on_change: Callable[[Policy], Any] | None = None,
        node: str | None = None,
        card_key: bytes | None = None,
        clock: Callable[[], datetime] = now_utc,
        stale_mode: Literal["closed", "last_good"] = "closed",
        scope: dict[str, Any] | None = None,
        on_status: Callable[[], Any] | None = None,
    ) -> None:
        self.path = path
        self.floor_path = path.with_name(path.name + ".floor")
        self._trusted = tuple(trusted)
        self._site = site
        self._node = node
        self._card_key = card_key
        self._clock = clock
        self.stale_mode = stale_mode
        self.scope = scope
        self._emit = emit
        self._on_change = on_change
        self.on_status = on_status  # told when ``status`` changed (the runtime re-sends state)
        self._lock = threading.Lock()
        self._current: VerifiedPolicy | None = None
        self._floor: tuple[int, str] | None = None  # (version, digest) of the highest applied
        self._floor = self._read_floor()
        self._stale_noted: int | None = None  # the version node.policy_stale was emitted for
        self.rejected = 0  # count of refused blobs since start

    @property
    def applied(self) -> Policy | None:
        """The policy in force, expired or not (doors judge expiry in controller.access)."""
        current = self._current
        return current.policy if current else None

    @property
    def current(self) -> Policy | None:
        """The policy in force; None once it expired if ``stale_mode`` is "closed"."""
        policy = self.applied
        if policy is not None and self.check_stale() and self.stale_mode == "closed":
            return None
        return policy

    def check_stale(self) -> bool:
        """True if the policy in force is past its expiry; the first time for a version, emits
        ``node.policy_stale``."""
        policy = self.applied
        if policy is None or not policy.expired(self._clock()):
            return False
        if self._stale_noted != policy.version:
            self._stale_noted = policy.version
            assert policy.expires_at is not None
            self._emit("node.policy_stale", NodePolicyStale(
                version=policy.version, expires_at=policy.expires_at, mode=self.stale_mode))
            if self.on_status is not None:
                self.on_status()
        return True

    def status(self) -> dict[str, Any]:
        """For the node's state message: what it runs, its floor, expiry and scope."""
        policy = self.applied
        floor = self._floor
        return {
            "version": policy.version if policy else None,
            "floor": floor[0] if floor else None,
            "expires_at": format_ts(policy.expires_at) if policy and policy.expires_at else None,
            "stale": bool(policy and policy.expired(self._clock())),
            "rejected": self.rejected,
            "scope": self.scope,
        }

    def offer(self, blob: bytes, *, source: str = "mqtt") -> bool:
        """Verify, persist and apply ``blob``. True if it is now the current policy."""
        with self._lock:
            verified = self._check(blob, source)
            if verified is None:
                return False
            if self._current and verified.digest == self._current.digest:
                return True
            persisted = self._persist(blob)
            self._apply(verified, source, persisted=persisted)
            return True

    def follow(self, subscribe: Callable[..., Any]) -> None:
        """Apply the stored policy, then every newer one published on the node's policy topic
        (``subscribe`` is a node runtime's or an MQTT link's)."""
        from controller.envelope import policy_topic

        if self._node is None:
            raise ValueError("a policy store that follows the broker needs its node's name")
        self.load()
        subscribe(policy_topic(self._site, self._node), lambda _topic, blob: self.offer(blob),
                  max_payload=MAX_POLICY_BYTES)

    def load(self) -> None:
        """At start-up: re-verify the stored policy and apply it. A missing file is no error."""
        with self._lock:
            self._floor = self._read_floor()
            try:
                blob = self.path.read_bytes()
            except FileNotFoundError:
                return
            except OSError as exc:
                self._reject(
                    PolicyError("malformed", f"stored policy unreadable: {exc.strerror}"), "stored"
                )
                return
            verified = self._check(blob, "stored")
            if verified is not None and not (
                self._current and verified.digest == self._current.digest
            ):
                self._apply(verified, "stored", persisted=True)

    def _check(self, blob: bytes, source: str) -> VerifiedPolicy | None:
        try:
            verified = open_policy(blob, self._trusted, site=self._site, node=self._node)
            new = verified.policy.version
            current = self._current
            floors = [(current.policy.version, current.digest)] if current else []
            floors += [self._floor] if self._floor else []
            for old, digest in floors:
                if new < old:
                    raise PolicyError(
                        "older_version", f"version {new} is older than {old}", version=new
                    )
                if new == old and verified.digest != digest:
                    raise PolicyError(
                        "version_conflict",
                        f"version {new} differs from the one applied",
                        version=new,
                    )
            if verified.policy.expired(self._clock()):
                raise PolicyError("expired", "the policy is past its expiry", version=new)
            if verified.policy.card_hash != "clear":
                holds_cards = any(p.cards for p in verified.policy.people)
                if self._card_key is None and holds_cards:
                    raise PolicyError("no_card_key", "the policy's cards are hashed and this "
                                      "node has no card key (secroom policy card-key)",
                                      version=new)
                if self._card_key is not None:
                    verified.policy.bind_card_key(self._card_key)
        except PolicyError as exc:
            self._reject(exc, source)
            return None
        return verified

    def _reject(self, exc: PolicyError, source: str) -> None:
        self.rejected += 1
        payload = PolicyRejected(
            reason=exc.reason, version=exc.version, detail=exc.detail[:200], source=source
        )
        self._emit("policy.rejected", payload)

    def _apply(self, verified: VerifiedPolicy, source: str, *, persisted: bool) -> None:
        version = verified.policy.version
        if self._floor is None or version > self._floor[0]:
            self._floor = (version, verified.digest)
            self._write_floor()
        self._current = verified
        payload = PolicyApplied(
            version=verified.policy.version,
            issued_at=verified.policy.issued_at,
            key_id=verified.key_id,
            digest=verified.digest,
            source=source,
            persisted=persisted,
        )
        self._emit("policy.applied", payload)
        if self._on_change is not None:
            self._on_change(verified.policy)
        if self.on_status is not None:
            self.on_status()

    def _read_floor(self) -> tuple[int, str] | None:
        """The persisted floor; an unreadable one counts as none (the stored policy still
        lifts it again; a restored older stored file alone cannot lower it below the file)."""
        try:
            raw = json.loads(self.floor_path.read_bytes())
            version, digest = raw["version"], raw["digest"]
        except (OSError, ValueError, KeyError, TypeError):
            return self._floor
        good = isinstance(version, int) and isinstance(digest, str)
        if good and (self._floor is None or version > self._floor[0]):
            return (version, digest)
        return self._floor

    def _write_floor(self) -> bool:
        assert self._floor is not None
        text = json.dumps({"version": self._floor[0], "digest": self._floor[1]}).encode()
        return _atomic_write(self.floor_path, text)

    def _persist(self, blob: bytes) -> bool:
        return _atomic_write(self.path, blob)


def _atomic_write(path: Path, data: bytes) -> bool:
    """Atomic write (temp file, fsync, rename, fsync dir). False if the disk refused."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        return False
    return True


def load_card_key(path: Path) -> bytes | None:
    """The node's card key (64 hex digits, ``secroom policy card-key``); None if the file does
    not exist. Raises ValueError (naming the file) if it is not such a key."""
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"card key {path} is unreadable") from exc
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise ValueError(f"card key {path} is not 64 hexadecimal digits "
                         "(make it again: secroom policy card-key)")
    return key


def store_for(config: GatewayConfig, scope: NodeScope, *, emit: Emit,
              on_change: Callable[[Policy], Any] | None = None,
              clock: Callable[[], datetime] = now_utc,
              runtime: Any = None) -> PolicyStore:
    """The policy store of a node process with ``config`` that decides on ``scope``; with
    ``runtime`` (controller.runtime.NodeRuntime) its state message reports the store's status."""
    from controller.keys import load_public

    store = PolicyStore(
        config.policy_store, [load_public(k) for k in config.policy.trusted_keys],
        site=config.node.site, emit=emit, on_change=on_change, node=config.node.name,
        card_key=load_card_key(config.card_key_file), clock=clock,
        stale_mode=config.policy.when_expired, scope=scope.as_dict(),
    )
    if runtime is not None:
        runtime.follow_policy(store.status)
        store.on_status = runtime.refresh_state
    return store
