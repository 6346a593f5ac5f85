"""API keys: issued to a unit or to a rule-of-law office (admin); only a hash is stored.

A unit key's jurisdiction is its unit's; an admin key administers one jurisdiction's subtree, or,
with no jurisdiction, the whole platform. What a key may touch is decided in `permissions.py`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlmodel import Session, col, select

from app.errors import KeyWithoutRight, LastAdminKey, NotFound, Unauthenticated
from app.models import ApiKey, Jurisdiction, Unit, utcnow
from app.models.base import detached_copy
from app.services import structure_memo

KEY_PREFIX = "pa_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a unit's key, or an admin key of the rule-of-law office."""

    key: ApiKey
    unit: Unit | None

    @property
    def is_admin(self) -> bool:
        return self.key.is_admin

    @property
    def name(self) -> str:
        return self.unit.name if self.unit is not None else self.key.name

    @property
    def jurisdiction_id(self) -> int | None:
        """None only for a platform-wide admin key."""
        return self.unit.jurisdiction_id if self.unit is not None else self.key.jurisdiction_id


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(
    *, session: Session, name: str, unit: Unit | None, is_admin: bool, jurisdiction: Jurisdiction | None = None
) -> tuple[ApiKey, str]:
    """Returns the row and the secret. The secret exists only in this return value. A unit key takes
    its unit's jurisdiction; an admin key the given one (None: platform-wide)."""
    if unit is None and not is_admin:
        raise KeyWithoutRight("密钥须属于某单位或为管理密钥 / a key needs a unit or the admin right")
    prefix = secrets.token_hex(4)
    secret = f"{KEY_PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        prefix=prefix,
        secret_hash=_hash(secret),
        name=name,
        unit_id=unit.id if unit is not None else None,
        is_admin=is_admin,
        jurisdiction_id=unit.jurisdiction_id if unit is not None else (jurisdiction.id if jurisdiction else None),
    )
    session.add(key)
    session.flush()
    return key, secret


def list_keys(*, session: Session, within: set[int] | None = None) -> list[tuple[ApiKey, Unit | None]]:
    """`within`: keys of these jurisdictions only (None: all, platform keys included)."""
    query = select(ApiKey, Unit).join(Unit, col(Unit.id) == col(ApiKey.unit_id), isouter=True)
    if within is not None:
        query = query.where(col(ApiKey.jurisdiction_id).in_(within))
    return list(session.exec(query.order_by(col(ApiKey.id))).all())


def find_key(*, session: Session, prefix: str) -> ApiKey:
    key = session.exec(select(ApiKey).where(ApiKey.prefix == prefix)).first()
    if key is None:
        raise NotFound(f"没有前缀为 {prefix} 的密钥 / no key with prefix {prefix!r}")
    return key


def other_active_admin_keys(*, session: Session, key: ApiKey) -> int:
    """Active admin keys of the same scope as `key` (its jurisdiction, or platform-wide), besides it."""
    query = select(ApiKey.id).where(
        ApiKey.is_admin == True,  # noqa: E712 -- SQL, not Python
        col(ApiKey.revoked_at).is_(None),
        ApiKey.id != key.id,
    )
    query = query.where(
        col(ApiKey.jurisdiction_id).is_(None)
        if key.jurisdiction_id is None
        else col(ApiKey.jurisdiction_id) == key.jurisdiction_id
    )
    return len(session.exec(query).all())


def revoke_key(*, session: Session, prefix: str, keep_last_admin: bool = False) -> ApiKey:
    """`keep_last_admin`: refuse to revoke the last active admin key of its scope (the API does; the
    operator's `plan-api keys revoke` may, since the command line can always issue a new one)."""
    key = find_key(session=session, prefix=prefix)
    if (
        keep_last_admin
        and key.is_admin
        and key.revoked_at is None
        and not other_active_admin_keys(session=session, key=key)
    ):
        scope = "全平台" if key.jurisdiction_id is None else "该行政区划"
        raise LastAdminKey(
            f"密钥 {prefix} 是{scope}最后一把有效的管理密钥,吊销后将无人能通过接口管理密钥;请先签发新的管理密钥"
            " / this is the last active admin key of its scope: issue another one first"
        )
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        session.flush()
    return key


def _snapshot(principal: Principal) -> Principal:
    """Copies bound to no session: the loading session may expire or close its rows, and a
    remembered principal is shared by requests on other threads."""
    unit = principal.unit
    copy = None
    if unit is not None:
        copy = detached_copy(unit)
        copy.jurisdiction = detached_copy(unit.jurisdiction)
    return Principal(key=detached_copy(principal.key), unit=copy)


def _bearer_token(authorization: str) -> str | None:
    """The key in `Authorization: Bearer pa_<prefix>_<secret>`, or None if the header is not one."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith(KEY_PREFIX) or token.count("_") < 2:
        return None
    return token


def remembered(*, where: str, structure_version: int, authorization: str | None) -> Principal | None:
    """The caller, if this token was accepted at this structure version (no database); else None,
    and `authenticate` decides (and words any refusal)."""
    token = _bearer_token(authorization) if authorization else None
    if token is None:
        return None
    found: Principal | None = structure_memo.memo.remembered(where, structure_version, "principal", _hash(token))
    return found


def authenticate(*, session: Session, authorization: str | None) -> Principal:
    if not authorization:
        raise Unauthenticated("缺少 API 密钥:请在请求头中提供 Authorization: Bearer <key> / missing API key")
    token = _bearer_token(authorization)
    if token is None:
        raise Unauthenticated("Authorization 头格式应为 Bearer pa_xxxxxxxx_… / malformed Authorization header")
    digest = _hash(token)  # the memo's key: never the token itself
    return structure_memo.memo.recall(session, "principal", digest, lambda: _load_principal(session, token, digest))


def _load_principal(session: Session, token: str, digest: str) -> Principal:
    prefix = token[len(KEY_PREFIX) :].split("_", 1)[0]
    found = session.exec(
        select(ApiKey, Unit)
        .join(Unit, col(Unit.id) == col(ApiKey.unit_id), isouter=True)
        .where(ApiKey.prefix == prefix)
    ).first()
    if found is None or not hmac.compare_digest(found[0].secret_hash, digest):
        raise Unauthenticated("API 密钥无效 / invalid API key")
    key, unit = found
    if key.revoked_at is not None:
        raise Unauthenticated(f"API 密钥 {prefix} 已于 {key.revoked_at:%Y-%m-%d} 吊销 / key revoked")
    return _snapshot(Principal(key=key, unit=unit))
