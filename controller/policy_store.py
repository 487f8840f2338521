"""The node's store of the last good policy: verified, persisted atomically, applied, and
re-loaded at start-up."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controller.events import Emit, PolicyApplied, PolicyRejected
from controller.policy import (
    MAX_POLICY_BYTES,
    Policy,
    PolicyError,
    VerifiedPolicy,
    open_policy,
)


class PolicyStore:
    """The last good policy: verified, written atomically to ``path``, applied, survives restart.

    ``emit`` gets policy.applied / policy.rejected; ``on_change`` (optional) is called with each
    newly applied policy, so that doors can follow lockdown. Thread-safe.
    """

    def __init__(
        self,
        path: Path,
        trusted: Sequence[Ed25519PublicKey],
        *,
        site: str,
        emit: Emit,
        on_change: Callable[[Policy], Any] | None = None,
    ) -> None:
        self.path = path
        self._trusted = tuple(trusted)
        self._site = site
        self._emit = emit
        self._on_change = on_change
        self._lock = threading.Lock()
        self._current: VerifiedPolicy | None = None
        self.rejected = 0  # count of refused blobs since start

    @property
    def current(self) -> Policy | None:
        current = self._current
        return current.policy if current else None

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
        """Apply the stored policy, then every newer one published on the site's policy topic
        (``subscribe`` is a node runtime's or an MQTT link's)."""
        from controller.envelope import policy_topic

        self.load()
        subscribe(policy_topic(self._site), lambda _topic, blob: self.offer(blob),
                  max_payload=MAX_POLICY_BYTES)

    def load(self) -> None:
        """At start-up: re-verify the stored policy and apply it. A missing file is no error."""
        with self._lock:
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
            verified = open_policy(blob, self._trusted, site=self._site)
            current = self._current
            if current is not None:
                new, old = verified.policy.version, current.policy.version
                if new < old:
                    raise PolicyError(
                        "older_version", f"version {new} is older than {old}", version=new
                    )
                if new == old and verified.digest != current.digest:
                    raise PolicyError(
                        "version_conflict",
                        f"version {new} differs from the one applied",
                        version=new,
                    )
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

    def _persist(self, blob: bytes) -> bool:
        """Atomic write (temp file, fsync, rename, fsync dir). False if the disk refused."""
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError:
            return False
        return True
